--[[
waitNode: a subflow node started its child run and gives up its worker slot; it stays running until
the child ends (then a resume job completes or fails it).

KEYS: state, ctx, outputs, events (see includes/run-context.lua)
ARGV: runId, now, endedChannel, abortChannel, [5] nodeId, [6] child run id
Returns: {'waiting'} | {'stale', runStatus} | {'not-running', nodeStatus}
Events: node.waiting (with the child run id)
]]
--- @include "state-cache"
--- @include "emit"

local nodeId, child = ARGV[5], ARGV[6]
load('status', nodeId .. '.status')
local runStatus = get('status')
if runStatus ~= 'running' then return {'stale', tostring(runStatus)} end
set(nodeId .. '.child', child)
flush()
if get(nodeId .. '.status') ~= 'running' then return {'not-running', get(nodeId .. '.status') or 'pending'} end
emit('node.waiting', nodeId, {'child', child})
return {'waiting'}
