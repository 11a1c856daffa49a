/**
 * Lua pieces shared by the run scripts. Every run script takes the same four keys and the same first
 * four ARGV entries, so these helpers can rely on them:
 *
 *   KEYS[1] state hash   KEYS[2] context hash   KEYS[3] outputs hash   KEYS[4] events stream
 *   ARGV[1] runId  ARGV[2] now (epoch ms)  ARGV[3] run-ended channel  ARGV[4] abort channel
 *
 * The state hash holds the run's own fields (status, blueprintId, version, topo, remaining, createdAt,
 * endedAt, ttl, parent, error) and every node's fields as `<nodeId>.<field>` (node ids never contain
 * "."): status, arrived, taken, attempts, error, startedAt, endedAt, worker, readied, meta, child. A node
 * without a status is pending. A field Redis does not have reads as false (Lua's form of a nil reply).
 *
 * Scripts read fields through a cache and write every change with one HSET at the end (`flush`), so a
 * transition costs a handful of commands however many fields it touches.
 */
export const SHARED_LUA = `
local stateKey, ctxKey, outKey, eventsKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local runId, now, endedChannel, abortChannel = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

local cache, dirty, dirtyList = {}, {}, {}
local function load(...)
  local fields = {...}
  local values = redis.call('HMGET', stateKey, unpack(fields))
  -- A field changed in this script keeps its new value: Redis has not seen it yet.
  for i, field in ipairs(fields) do if not dirty[field] then cache[field] = values[i] end end
end
local function get(field)
  if cache[field] == nil then cache[field] = redis.call('HGET', stateKey, field) end
  return cache[field]
end
local function set(field, value)
  cache[field] = value
  if not dirty[field] then
    dirty[field] = true
    dirtyList[#dirtyList + 1] = field
  end
end
local function flush()
  if #dirtyList == 0 then return end
  local args = {}
  for _, field in ipairs(dirtyList) do
    args[#args + 1] = field
    args[#args + 1] = cache[field]
  end
  redis.call('HSET', stateKey, unpack(args))
  dirty, dirtyList = {}, {}
end

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
  set('status', status)
  set('endedAt', now)
  flush()
  emit('run.' .. status)
  local ttl = tonumber(get('ttl')) or 604800
  for i = 1, 4 do redis.call('EXPIRE', KEYS[i], ttl) end
  redis.call('PUBLISH', endedChannel, status)
end

-- Every node that has not finished becomes cancelled (on failure or cancellation of the run). Returns
-- the child runs of the subflow nodes among them, which the caller cancels in turn.
local function cancelUnfinished(topo)
  local fields = {}
  for i, id in ipairs(topo.ids) do fields[i * 2 - 1] = id .. '.status'; fields[i * 2] = id .. '.child' end
  load(unpack(fields))
  local children, cancelled = {}, {}
  for _, id in ipairs(topo.ids) do
    if not isTerminalNode(get(id .. '.status')) then
      set(id .. '.status', 'cancelled')
      set(id .. '.endedAt', now)
      cancelled[#cancelled + 1] = id
      local child = get(id .. '.child')
      if child then children[#children + 1] = child end
    end
  end
  if #cancelled > 0 then emit('nodes.cancelled', nil, {'nodes', table.concat(cancelled, ',')}) end
  return children
end

-- Reads the context keys and outputs a node needs, given as [context, outputs] (each '*' for all: HGETALL,
-- else a list: HMGET), as that pair's JSON, or as '' for nothing.
local function readNeeds(need)
  if need == '' then return {}, {} end
  if type(need) == 'string' then need = cjson.decode(need) end
  local function read(key, names)
    if names == '*' then return redis.call('HGETALL', key) end
    if #names == 0 then return {} end
    return redis.call('HMGET', key, unpack(names))
  end
  return read(ctxKey, need[1]), read(outKey, need[2])
end

-- Claims a queued (or redelivered running) node for a worker: running, one more attempt.
local function claim(nodeId, workerId)
  local attempt = (tonumber(get(nodeId .. '.attempts')) or 0) + 1
  set(nodeId .. '.status', 'running')
  set(nodeId .. '.startedAt', now)
  set(nodeId .. '.worker', workerId)
  set(nodeId .. '.attempts', attempt)
  emit('node.started', nodeId, {'attempt', attempt, 'worker', workerId})
  return attempt
end

-- Where and when the node's current attempt ran, for its end event.
local function attemptFields(nodeId)
  return {'attempt', get(nodeId .. '.attempts') or '0', 'startedAt', get(nodeId .. '.startedAt') or '', 'worker', get(nodeId .. '.worker') or ''}
end

-- The parent link of a child run (JSON {runId, nodeId, version}) or ''.
local function parentOf()
  return get('parent') or ''
end
`;
