--[[
cancelRun: cancels a running run: unfinished nodes become cancelled (queued ones will never run), the
run ends cancelled, and workers running its nodes are told to abort them.

KEYS: state, ctx, outputs, events (see includes/run-context.lua)
ARGV: runId, now, endedChannel, abortChannel, [5] reason
Returns: {'cancelled', parent, childRunId...} (parent link or '', child runs to cancel)
  | {'not-running', status} | {'missing'}
Events: nodes.cancelled, run.cancelled
]]
--- @include "state-cache"
--- @include "cancel-unfinished"
--- @include "finish-run"
--- @include "parent-of"

load('status', 'topo', 'parent', 'ttl')
local runStatus = get('status')
if not runStatus then return {'missing'} end
if runStatus ~= 'running' then return {'not-running', runStatus} end
set('cancelReason', ARGV[5])
local children = cancelUnfinished(cjson.decode(get('topo')))
finishRun('cancelled')
redis.call('PUBLISH', abortChannel, runId)
return {'cancelled', parentOf(), unpack(children)}
