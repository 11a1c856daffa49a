--[[
waitNode: a node parks and gives up its worker slot. Two kinds of park:
  - a node waiting for a child run ([7] ''): a subflow's child, or a loop's iterations one after another
    (indexed children, [12]); it stays running until the child ends (then a resume job completes or fails
    it, or starts the next iteration). Each indexed child is recorded in `children`; a child whose index is
    not above the one recorded (a late call racing a later iteration's) changes nothing;
  - a `wait` or durable `sleep` node ([7] 'waiting' or 'sleeping'): it becomes that status, with the time
    it parked (`since`) and, for a timed park, `wake` (epoch ms; the caller adds a delayed wake job); a
    waiting node also keeps its prompt, the actions a signal may choose, and the action its timeout
    completes it with. It completes later through complete-node (a signal or its wake job; the first
    wins). A parked node has no job on purpose: start-node answers 'parked' for it.

KEYS: state, ctx, outputs, events (see includes/run-context.lua)
ARGV: runId, now, endedChannel, abortChannel, [5] nodeId, [6] child run id or '',
      [7] park status: '' (waiting for a child run: stays running), 'waiting' or 'sleeping',
      [8] wake time (epoch ms) or '', [9] prompt or '', [10] actions comma-joined or '',
      [11] the action a timeout completes it with, or '', [12] the child's index (a loop's iteration) or ''
Returns: {'waiting'} (a child run) | {'parked'} | {'stale', runStatus} | {'not-running', nodeStatus}
Events: node.waiting (with the child run id and its index when it has one; or, for a wait node, attempt,
  wake, prompt and actions), node.sleeping (attempt, wake)
]]
--- @include "state-cache"
--- @include "emit"

local nodeId, child, parkAs, index = ARGV[5], ARGV[6], ARGV[7] or '', ARGV[12] or ''
load('status', nodeId .. '.status', nodeId .. '.attempts', nodeId .. '.child', nodeId .. '.childIndex', nodeId .. '.children')
local runStatus = get('status')
if runStatus ~= 'running' then return {'stale', tostring(runStatus)} end
if parkAs == '' then
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
end

local status = get(nodeId .. '.status')
if status ~= 'running' then return {'not-running', status or 'pending'} end
local wake, prompt, actions, wakeAction = ARGV[8], ARGV[9], ARGV[10], ARGV[11]
set(nodeId .. '.status', parkAs)
set(nodeId .. '.since', now)
-- Every park field is written, '' when absent, so nothing of an earlier park lingers.
set(nodeId .. '.wake', wake)
set(nodeId .. '.prompt', prompt)
set(nodeId .. '.actions', actions)
set(nodeId .. '.wakeAction', wakeAction)
flush()
local event = {'attempt', get(nodeId .. '.attempts') or '1'}
if wake ~= '' then event[#event + 1] = 'wake'; event[#event + 1] = wake end
if parkAs == 'waiting' then
  event[#event + 1] = 'prompt'; event[#event + 1] = prompt
  event[#event + 1] = 'actions'; event[#event + 1] = actions
end
emit('node.' .. parkAs, nodeId, event)
return {'parked'}
