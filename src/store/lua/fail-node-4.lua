--[[
failNode: a node failed for good (retries and fallback exhausted): the node becomes failed, the run
fails with the node and the reason, every unfinished node is cancelled, and workers running the
run's other nodes are told to abort them.

KEYS: state, ctx, outputs, events (see includes/run-context.lua)
ARGV: runId, now, endedChannel, abortChannel, [5] nodeId, [6] node error JSON, [7] run error JSON
Returns: {'failed', parent, childRunId...} (parent link or '', child runs to cancel)
  | {'stale', runStatus} | {'duplicate', nodeStatus}
Events: node.failed, nodes.cancelled, run.failed
]]
--- @include "state-cache"
--- @include "emit"
--- @include "node-status"
--- @include "cancel-unfinished"
--- @include "finish-run"
--- @include "attempt-fields"
--- @include "parent-of"

local nodeId = ARGV[5]
load('status', 'topo', 'parent', 'ttl', nodeId .. '.status', nodeId .. '.attempts', nodeId .. '.startedAt', nodeId .. '.worker')
local runStatus = get('status')
if runStatus ~= 'running' then return {'stale', tostring(runStatus)} end
local status = get(nodeId .. '.status')
if isTerminalNode(status) then return {'duplicate', tostring(status)} end
set(nodeId .. '.status', 'failed')
set(nodeId .. '.error', ARGV[6])
set(nodeId .. '.endedAt', now)
local failedEvent = attemptFields(nodeId)
failedEvent[#failedEvent + 1] = 'error'
failedEvent[#failedEvent + 1] = ARGV[6]
emit('node.failed', nodeId, failedEvent)
set('error', ARGV[7])
local children = cancelUnfinished(cjson.decode(get('topo')))
finishRun('failed')
redis.call('PUBLISH', abortChannel, runId)
return {'failed', parentOf(), unpack(children)}
