--[[
retryNode: records a failed attempt that will be retried; the node goes back to queued.

KEYS: state, ctx, outputs, events (see includes/run-context.lua)
ARGV: runId, now, endedChannel, abortChannel, [5] nodeId, [6] error JSON, [7] delay ms
Returns: {'ok'} | {'stale', runStatus} | {'duplicate', nodeStatus}
Events: node.retrying
]]
--- @include "state-cache"
--- @include "emit"
--- @include "attempt-fields"

local nodeId = ARGV[5]
load('status', nodeId .. '.status', nodeId .. '.attempts', nodeId .. '.startedAt', nodeId .. '.worker')
local runStatus = get('status')
if runStatus ~= 'running' then return {'stale', tostring(runStatus)} end
local status = get(nodeId .. '.status')
if status ~= 'running' then return {'duplicate', status or 'pending'} end
set(nodeId .. '.status', 'queued')
set(nodeId .. '.error', ARGV[6])
flush()
local event = attemptFields(nodeId)
event[#event + 1] = 'error'
event[#event + 1] = ARGV[6]
event[#event + 1] = 'delayMs'
event[#event + 1] = ARGV[7]
emit('node.retrying', nodeId, event)
return {'ok'}
