import { SHARED_LUA } from './shared.js';

/**
 * waitNode: a subflow node started its child run and gives up its worker slot; it stays running until
 * the child ends (then a resume job completes or fails it).
 *
 * KEYS: run, nodes, ctx, outputs, events (see shared.ts)
 * ARGV: runId, now, endedChannel, abortChannel, [5] nodeId, [6] child run id
 * Returns: {'waiting'} | {'stale', runStatus} | {'not-running', nodeStatus}
 * Events: node.waiting (with the child run id)
 */
export const waitNodeLua = `${SHARED_LUA}
local nodeId, child = ARGV[5], ARGV[6]
local runStatus = redis.call('HGET', runKey, 'status')
if runStatus ~= 'running' then return {'stale', tostring(runStatus)} end
redis.call('HSET', nodesKey, nodeId .. '.child', child)
local status = redis.call('HGET', nodesKey, nodeId .. '.status')
if status ~= 'running' then return {'not-running', tostring(status)} end
emit('node.waiting', nodeId, {'child', child})
return {'waiting'}
`;
