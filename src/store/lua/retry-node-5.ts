import { SHARED_LUA } from './shared.js';

/**
 * retryNode: records a failed attempt that will be retried; the node goes back to queued.
 *
 * KEYS: run, nodes, ctx, outputs, events (see shared.ts)
 * ARGV: runId, now, endedChannel, abortChannel, [5] nodeId, [6] error JSON, [7] delay ms
 * Returns: {'ok'} | {'stale', runStatus} | {'duplicate', nodeStatus}
 * Events: node.retrying
 */
export const retryNodeLua = `${SHARED_LUA}
local nodeId = ARGV[5]
local runStatus = redis.call('HGET', runKey, 'status')
if runStatus ~= 'running' then return {'stale', tostring(runStatus)} end
local status = redis.call('HGET', nodesKey, nodeId .. '.status')
if status ~= 'running' then return {'duplicate', tostring(status)} end
redis.call('HSET', nodesKey, nodeId .. '.status', 'queued', nodeId .. '.error', ARGV[6])
emit('node.retrying', nodeId, {'error', ARGV[6], 'delayMs', ARGV[7]})
return {'ok'}
`;
