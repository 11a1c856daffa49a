import { SHARED_LUA } from './shared.js';

/**
 * startRun: creates a run, or finds it when it already exists (starting is idempotent per run id).
 *
 * KEYS: state, ctx, outputs, events (see shared.ts)
 * ARGV: runId, now, endedChannel, abortChannel,
 *       [5] blueprintId, [6] version, [7] topology JSON, [8] ttl seconds, [9] parent JSON or '',
 *       [10..] context pairs: key, JSON value, ...
 * Returns: {'created'} or {'exists', version, status}
 * Events: run.started
 */
export const startRunLua = `${SHARED_LUA}
load('version', 'status')
if get('version') then return {'exists', get('version'), get('status')} end
local topo = cjson.decode(ARGV[7])
set('status', 'running')
set('blueprintId', ARGV[5])
set('version', ARGV[6])
set('topo', ARGV[7])
set('remaining', #topo.ids)
set('createdAt', now)
set('ttl', ARGV[8])
if ARGV[9] ~= '' then set('parent', ARGV[9]) end
for i, id in ipairs(topo.ids) do
  set(id .. '.status', (topo.indeg[i] == 0) and 'queued' or 'pending')
end
flush()
if #ARGV >= 10 then redis.call('HSET', ctxKey, unpack(ARGV, 10)) end
emit('run.started')
return {'created'}
`;
