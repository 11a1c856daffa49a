--[[
startRun: creates a run, or finds it when it already exists (starting is idempotent per run id).

KEYS: state, ctx, outputs, events (see includes/run-context.lua)
ARGV: runId, now, endedChannel, abortChannel,
      [5] blueprintId, [6] version, [7] topology JSON, [8] ttl seconds, [9] parent JSON or '',
      [10] number of nodes, [11] start node ids, comma-joined,
      [12] pins JSON (blueprint id -> version of every blueprint the run's subflows can reach) or '',
      [13] deadline (epoch ms; the run fails with RUN_TIMEOUT past it) or '',
      [14..] context pairs: key, JSON value, ...
Only the start nodes get a status (queued); a node without one is pending.
Returns: {'created'} or {'exists', version, status}
Events: run.started
]]
--- @include "state-cache"
--- @include "emit"

load('version', 'status')
if get('version') then return {'exists', get('version'), get('status')} end
set('status', 'running')
set('blueprintId', ARGV[5])
set('version', ARGV[6])
set('topo', ARGV[7])
set('remaining', ARGV[10])
set('createdAt', now)
set('ttl', ARGV[8])
if ARGV[9] ~= '' then set('parent', ARGV[9]) end
if ARGV[12] ~= '' then set('pins', ARGV[12]) end
if ARGV[13] ~= '' then set('deadline', ARGV[13]) end
for id in string.gmatch(ARGV[11], '[^,]+') do set(id .. '.status', 'queued') end
-- The context's size in bytes of JSON values, which completeNode keeps up to date against its limit.
local ctxBytes = 0
for i = 13, #ARGV, 2 do ctxBytes = ctxBytes + #ARGV[i] end
set('ctxBytes', ctxBytes)
flush()
if #ARGV >= 14 then redis.call('HSET', ctxKey, unpack(ARGV, 14)) end
emit('run.started')
return {'created'}
