import { SHARED_LUA } from './shared.js';

/**
 * completeNode: applies a node's result atomically and exactly once. Mirrors `completeNode` in
 * src/engine/transitions.ts: stores the output and context writes, marks the node done, records each
 * outgoing edge's arrival (taken or skipped), propagates skips (dead-path elimination), marks nodes that
 * became ready as queued, and completes the run when no node is left.
 *
 * KEYS: run, nodes, ctx, outputs, events (see shared.ts)
 * ARGV: runId, now, endedChannel, abortChannel,
 *       [5] nodeId, [6] node index (1-based), [7] output JSON or '' for none,
 *       [8] taken flags, one '1'/'0' per outgoing edge in topology order, [9] action or '',
 *       [10] node meta JSON (usage, provider) or '', [11..] context writes: key, JSON value, ...
 * Returns: {'ok', runStatus, parent, readyId...} where parent is the parent link when this completion
 *   ended a child run (else '') | {'stale', runStatus} | {'duplicate', nodeStatus}
 * Events: node.done, node.queued, node.skipped, run.completed
 */
export const completeNodeLua = `${SHARED_LUA}
local nodeId, index, output, taken, action, meta = ARGV[5], tonumber(ARGV[6]), ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local runStatus = redis.call('HGET', runKey, 'status')
if runStatus ~= 'running' then return {'stale', tostring(runStatus)} end
local status = redis.call('HGET', nodesKey, nodeId .. '.status')
if status ~= 'running' and status ~= 'queued' then return {'duplicate', tostring(status)} end

if output ~= '' then redis.call('HSET', outKey, nodeId, output) end
if meta ~= '' then redis.call('HSET', nodesKey, nodeId .. '.meta', meta) end
if #ARGV >= 11 then redis.call('HSET', ctxKey, unpack(ARGV, 11)) end
redis.call('HSET', nodesKey, nodeId .. '.status', 'done', nodeId .. '.endedAt', now)
local remaining = redis.call('HINCRBY', runKey, 'remaining', -1)
if action ~= '' then emit('node.done', nodeId, {'action', action}) else emit('node.done', nodeId) end

local topo = cjson.decode(redis.call('HGET', runKey, 'topo'))
local ready = {}
-- Work list of arrivals {target index, taken}; skip chains append to it.
local queue, head = {}, 1
for i, target in ipairs(topo.out[index]) do
  queue[#queue + 1] = {target, string.sub(taken, i, i) == '1'}
end
while head <= #queue do
  local target, wasTaken = queue[head][1], queue[head][2]
  head = head + 1
  local id = topo.ids[target]
  local arrived = redis.call('HINCRBY', nodesKey, id .. '.arrived', 1)
  local takenCount
  if wasTaken then
    takenCount = redis.call('HINCRBY', nodesKey, id .. '.taken', 1)
  else
    takenCount = tonumber(redis.call('HGET', nodesKey, id .. '.taken')) or 0
  end
  -- An 'any' join that already fired ignores later arrivals.
  if redis.call('HGET', nodesKey, id .. '.status') == 'pending' then
    local allArrived = arrived == topo.indeg[target]
    local fire
    if topo.any[target] == 1 then fire = wasTaken else fire = allArrived and takenCount > 0 end
    if fire then
      redis.call('HSET', nodesKey, id .. '.status', 'queued')
      ready[#ready + 1] = id
      emit('node.queued', id)
    elseif allArrived and takenCount == 0 then
      redis.call('HSET', nodesKey, id .. '.status', 'skipped', id .. '.endedAt', now)
      remaining = redis.call('HINCRBY', runKey, 'remaining', -1)
      emit('node.skipped', id)
      for _, next in ipairs(topo.out[target]) do queue[#queue + 1] = {next, false} end
    end
  end
end
if #ready > 0 then redis.call('HSET', nodesKey, nodeId .. '.readied', table.concat(ready, ',')) end
local parent = ''
if remaining == 0 then
  finishRun('completed')
  runStatus = 'completed'
  parent = parentOf()
end
return {'ok', runStatus, parent, unpack(ready)}
`;
