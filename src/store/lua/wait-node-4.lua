--[[
waitNode: a subflow node started its child run and gives up its worker slot; it stays running until
the child ends (then a resume job completes or fails it). A loop node waits for one indexed child after
another (its iterations): each is recorded in `children`, and a child whose index is not above the one
recorded (a late call racing a later iteration's) changes nothing.

KEYS: state, ctx, outputs, events (see includes/run-context.lua)
ARGV: runId, now, endedChannel, abortChannel, [5] nodeId, [6] child run id, [7] the child's index or ''
Returns: {'waiting'} | {'stale', runStatus} | {'not-running', nodeStatus}
Events: node.waiting (with the child run id, and its index when it has one)
]]
--- @include "state-cache"
--- @include "emit"

local nodeId, child, index = ARGV[5], ARGV[6], ARGV[7] or ''
load('status', nodeId .. '.status', nodeId .. '.child', nodeId .. '.childIndex', nodeId .. '.children')
local runStatus = get('status')
if runStatus ~= 'running' then return {'stale', tostring(runStatus)} end
local event = {'child', child}
if index == '' then
  set(nodeId .. '.child', child)
elseif (tonumber(get(nodeId .. '.childIndex')) or -1) < tonumber(index) then
  local previous = get(nodeId .. '.child')
  if previous and previous ~= child then set(nodeId .. '.children', (get(nodeId .. '.children') or previous) .. ',' .. child) end
  set(nodeId .. '.child', child)
  set(nodeId .. '.childIndex', index)
  event[#event + 1] = 'index'
  event[#event + 1] = index
else
  event = nil
end
flush()
if get(nodeId .. '.status') ~= 'running' then return {'not-running', get(nodeId .. '.status') or 'pending'} end
if event then emit('node.waiting', nodeId, event) end
return {'waiting'}
