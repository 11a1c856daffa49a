--[[
cancelRun: cancels a running run: unfinished nodes become cancelled (queued ones will never run; waiting
and sleeping ones are never woken: their wake jobs find the run ended), the run ends cancelled, and
workers running its nodes are told to abort them. With an error in ARGV[6] the run fails with it instead
(its deadline passed: RUN_TIMEOUT), with the same effect on its nodes.

KEYS: state, ctx, outputs, events (see includes/run-context.lua)
ARGV: runId, now, endedChannel, abortChannel, [5] reason, [6] run error JSON to fail with, or '' / absent
Returns: {'cancelled' or 'failed', parent, childRunId...} (parent link or '', child runs to cancel)
  | {'not-running', status} | {'missing'}
Events: nodes.cancelled, run.cancelled or run.failed
]]
--- @include "state-cache"
--- @include "cancel-unfinished"
--- @include "finish-run"
--- @include "parent-of"

load('status', 'topo', 'parent', 'ttl')
local runStatus = get('status')
if not runStatus then return {'missing'} end
if runStatus ~= 'running' then return {'not-running', runStatus} end
local failWith = ARGV[6] or ''
if failWith == '' then set('cancelReason', ARGV[5]) else set('error', failWith) end
local children = cancelUnfinished(cjson.decode(get('topo')))
local ending = failWith == '' and 'cancelled' or 'failed'
finishRun(ending)
redis.call('PUBLISH', abortChannel, runId)
return {ending, parentOf(), unpack(children)}
