import { SHARED_LUA } from './shared.js';

/**
 * startNode: claims a node for execution and reads what it needs, in one round trip.
 *
 * KEYS: state, ctx, outputs, events (see shared.ts)
 * ARGV: runId, now, endedChannel, abortChannel,
 *       [5] nodeId, [6] node index (1-based), [7] workerId,
 *       [8] mode: 'start' (claim and read) or 'resume' (a running subflow node whose child ended: read only)
 * Returns:
 *   {'run', version, blueprintId, attempt, contextReply, outputsReply}: execute it. A reply is HGETALL's
 *     flat list when the node needs everything, else HMGET's values in the order of its needs.
 *   {'done', readied}: already completed; `readied` lists (comma-joined) the nodes its completion made
 *     ready, so a redelivered job re-enqueues them in case the first worker died before it could.
 *   {'ended', runStatus, parent}: the run is over; `parent` (a parent link or '') lets a redelivered
 *     job of a child run's last node tell the parent again, in case the first worker died before it could.
 *   {'skip', reason}: nothing to do (node skipped/failed/cancelled or not ready).
 * Events: node.started
 */
export const startNodeLua = `${SHARED_LUA}
local nodeId, index, workerId, mode = ARGV[5], tonumber(ARGV[6]), ARGV[7], ARGV[8]
load('status', 'version', 'blueprintId', 'topo', 'parent', nodeId .. '.status', nodeId .. '.attempts', nodeId .. '.readied')
local runStatus = get('status')
if not runStatus then return {'skip', 'run not found'} end
if runStatus ~= 'running' then return {'ended', runStatus, parentOf()} end
local status = get(nodeId .. '.status')
if status == 'done' then return {'done', get(nodeId .. '.readied') or ''} end
local attempt
if mode == 'resume' then
  if status ~= 'running' then return {'skip', 'node ' .. tostring(status)} end
  attempt = tonumber(get(nodeId .. '.attempts')) or 1
else
  if status ~= 'queued' and status ~= 'running' then return {'skip', 'node ' .. tostring(status)} end
  attempt = claim(nodeId, workerId)
  flush()
end
local topo = cjson.decode(get('topo'))
local ctx, out = readNeeds(topo.needs[index])
return {'run', get('version'), get('blueprintId'), attempt, ctx, out}
`;
