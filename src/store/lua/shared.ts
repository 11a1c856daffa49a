/**
 * Lua pieces shared by the run scripts. Every run script takes the same five keys and the same first
 * four ARGV entries, so these helpers can rely on them:
 *
 *   KEYS[1] run hash      KEYS[2] node-state hash   KEYS[3] context hash
 *   KEYS[4] outputs hash  KEYS[5] events stream
 *   ARGV[1] runId  ARGV[2] now (epoch ms)  ARGV[3] run-ended channel  ARGV[4] abort channel
 *
 * Node state lives in one hash with fields `<nodeId>.<field>` (node ids never contain "."):
 * status, arrived, taken, attempts, error, startedAt, endedAt, worker, readied, meta (usage and
 * provider, JSON), child (the run id of a subflow node's child run).
 */
export const SHARED_LUA = `
local runKey, nodesKey, ctxKey, outKey, eventsKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local runId, now, endedChannel, abortChannel = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

local function emit(kind, nodeId, extra)
  local fields = {'type', kind, 'at', now}
  if nodeId then fields[#fields + 1] = 'node'; fields[#fields + 1] = nodeId end
  if extra then for i = 1, #extra do fields[#fields + 1] = extra[i] end end
  redis.call('XADD', eventsKey, 'MAXLEN', '~', 1000, '*', unpack(fields))
end

local function isTerminalNode(status)
  return status == 'done' or status == 'skipped' or status == 'failed' or status == 'cancelled'
end

-- Ends the run: final status, event, expiry of every key, and a message for waiting clients.
local function finishRun(status)
  redis.call('HSET', runKey, 'status', status, 'endedAt', now)
  emit('run.' .. status)
  local ttl = tonumber(redis.call('HGET', runKey, 'ttl')) or 604800
  for i = 1, 5 do redis.call('EXPIRE', KEYS[i], ttl) end
  redis.call('PUBLISH', endedChannel, status)
end

-- Every node that has not finished becomes cancelled (on failure or cancellation of the run). Returns
-- the child runs of the subflow nodes among them, which the caller cancels in turn.
local function cancelUnfinished(topo)
  local children = {}
  for _, id in ipairs(topo.ids) do
    local status = redis.call('HGET', nodesKey, id .. '.status')
    if not isTerminalNode(status) then
      redis.call('HSET', nodesKey, id .. '.status', 'cancelled', id .. '.endedAt', now)
      emit('node.cancelled', id)
      local child = redis.call('HGET', nodesKey, id .. '.child')
      if child then children[#children + 1] = child end
    end
  end
  return children
end

-- The parent link of a child run (JSON {runId, nodeId, version}) or ''.
local function parentOf()
  return redis.call('HGET', runKey, 'parent') or ''
end
`;
