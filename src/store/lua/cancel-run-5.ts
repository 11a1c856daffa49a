import { SHARED_LUA } from './shared.js';

/**
 * cancelRun: cancels a running run: unfinished nodes become cancelled (queued ones will never run), the
 * run ends cancelled, and workers running its nodes are told to abort them.
 *
 * KEYS: run, nodes, ctx, outputs, events (see shared.ts)
 * ARGV: runId, now, endedChannel, abortChannel, [5] reason
 * Returns: {'cancelled', parent, childRunId...} (parent link or '', child runs to cancel)
 *   | {'not-running', status} | {'missing'}
 * Events: node.cancelled, run.cancelled
 */
export const cancelRunLua = `${SHARED_LUA}
local runStatus = redis.call('HGET', runKey, 'status')
if not runStatus then return {'missing'} end
if runStatus ~= 'running' then return {'not-running', runStatus} end
redis.call('HSET', runKey, 'cancelReason', ARGV[5])
local children = cancelUnfinished(cjson.decode(redis.call('HGET', runKey, 'topo')))
finishRun('cancelled')
redis.call('PUBLISH', abortChannel, runId)
return {'cancelled', parentOf(), unpack(children)}
`;
