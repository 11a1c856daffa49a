import { SHARED_LUA } from './shared.js';

/**
 * startRun: creates a run, or finds it when it already exists (starting is idempotent per run id).
 *
 * KEYS: run, nodes, ctx, outputs, events (see shared.ts)
 * ARGV: runId, now, endedChannel, abortChannel,
 *       [5] blueprintId, [6] version, [7] topology JSON, [8] ttl seconds, [9] parent JSON or '',
 *       [10..] context pairs: key, JSON value, ...
 * Returns: {'created'} or {'exists', version, status}
 * Events: run.started, node.queued for each start node
 */
export const startRunLua = `${SHARED_LUA}
local existing = redis.call('HMGET', runKey, 'version', 'status')
if existing[1] then return {'exists', existing[1], existing[2]} end
local topo = cjson.decode(ARGV[7])
local count = #topo.ids
redis.call('HSET', runKey, 'status', 'running', 'blueprintId', ARGV[5], 'version', ARGV[6], 'topo', ARGV[7],
  'remaining', count, 'createdAt', now, 'ttl', ARGV[8])
if ARGV[9] ~= '' then redis.call('HSET', runKey, 'parent', ARGV[9]) end
local fields = {}
for i, id in ipairs(topo.ids) do
  fields[#fields + 1] = id .. '.status'
  fields[#fields + 1] = (topo.indeg[i] == 0) and 'queued' or 'pending'
end
redis.call('HSET', nodesKey, unpack(fields))
if #ARGV >= 10 then redis.call('HSET', ctxKey, unpack(ARGV, 10)) end
emit('run.started')
for i, id in ipairs(topo.ids) do
  if topo.indeg[i] == 0 then emit('node.queued', id) end
end
return {'created'}
`;
