import { SHARED_LUA } from './shared.js';

/**
 * startNode: claims a node for execution and reads what it needs, in one round trip.
 *
 * KEYS: run, nodes, ctx, outputs, events (see shared.ts)
 * ARGV: runId, now, endedChannel, abortChannel,
 *       [5] nodeId, [6] workerId, [7] mode: 'start' (claim and read) or 'resume' (a running subflow node
 *       whose child ended: read only, no new attempt),
 *       [8] context key count, or '*' for the whole context, then the keys,
 *       then the output key count (or '*'), then the node ids
 * Returns:
 *   {'run', version, blueprintId, attempt, contextReply, outputsReply}: execute it. A reply is HGETALL's
 *     flat list for '*', else HMGET's values in key order.
 *   {'ended', runStatus, parent}: the run is over; `parent` (a parent link or '') lets a redelivered
 *     job of a child run's last node tell the parent again, in case the first worker died before it could.
 *   {'done', readied}: already completed; `readied` lists (comma-joined) the nodes its completion made
 *     ready, so a redelivered job re-enqueues them in case the first worker died before it could.
 *   {'skip', reason}: nothing to do (run ended, node skipped/failed/cancelled or not ready).
 * Events: node.started
 */
export const startNodeLua = `${SHARED_LUA}
local nodeId, workerId, mode = ARGV[5], ARGV[6], ARGV[7]
local run = redis.call('HMGET', runKey, 'status', 'version', 'blueprintId')
if not run[1] then return {'skip', 'run not found'} end
if run[1] ~= 'running' then return {'ended', run[1], parentOf()} end
local status = redis.call('HGET', nodesKey, nodeId .. '.status')
if status == 'done' then return {'done', redis.call('HGET', nodesKey, nodeId .. '.readied') or ''} end
local attempt
if mode == 'resume' then
  if status ~= 'running' then return {'skip', 'node ' .. tostring(status)} end
  attempt = tonumber(redis.call('HGET', nodesKey, nodeId .. '.attempts')) or 1
else
  if status ~= 'queued' and status ~= 'running' then return {'skip', 'node ' .. tostring(status)} end
  redis.call('HSET', nodesKey, nodeId .. '.status', 'running', nodeId .. '.startedAt', now, nodeId .. '.worker', workerId)
  attempt = redis.call('HINCRBY', nodesKey, nodeId .. '.attempts', 1)
  emit('node.started', nodeId, {'attempt', attempt, 'worker', workerId})
end

local pos = 8
local function read(key)
  local mode = ARGV[pos]
  if mode == '*' then pos = pos + 1; return redis.call('HGETALL', key) end
  local n = tonumber(mode)
  local names = {}
  for i = 1, n do names[i] = ARGV[pos + i] end
  pos = pos + n + 1
  if n == 0 then return {} end
  return redis.call('HMGET', key, unpack(names))
end
local ctx = read(ctxKey)
local out = read(outKey)
return {'run', run[2], run[3], attempt, ctx, out}
`;
