--[[
acquireLlmSlot: takes a slot of one fleet-wide LLM limit for a request, or puts it in the limit's line.
A request is granted when nobody is ahead of it in line (FIFO per limit), the limit is not paused (a
provider's Retry-After), and it fits the concurrency, requests-per-window and tokens-per-window caps. A
request larger than the whole token cap is granted alone in an empty window (it would never fit otherwise).

KEYS: leases, window, tokens, state, queue, waiters (see includes/limit-context.lua)
ARGV: [1] id (waiter id; the lease id once granted), [2] maxConcurrent, [3] requests per window,
  [4] tokens per window (0: no cap), [5] window ms, [6] estimated tokens, [7] lease ms (also how long a
  waiter stays in line without calling again), [8] wake channel, [9] limit id
Returns: {'granted'} | {'wait', reason, retryInMs, position}
  reason: 'queue' (others are ahead), 'paused', 'concurrency', 'requests' or 'tokens'; retryInMs: when the
  cap may give way by itself (lapsing leases, the window moving on, the pause ending); position: 0 at the head
Events: publishes the limit id on the wake channel when it granted the head and others still wait (the
  next may fit too)
]]
--- @include "limit-trim"
--- @include "limit-expire"

local id = ARGV[1]
local maxConcurrent, maxRequests, maxTokens = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local windowMs, estimate, leaseMs = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local now = nowMs()
trim(now, windowMs)

local function enqueue()
  local ticket = redis.call('HINCRBY', stateKey, 'seq', 1)
  redis.call('ZADD', queueKey, ticket, id)
end

local rank = redis.call('ZRANK', queueKey, id)
if rank == false and redis.call('ZCARD', queueKey) > 0 then
  enqueue()
  rank = redis.call('ZRANK', queueKey, id)
end
if rank ~= false then redis.call('ZADD', waitersKey, now + leaseMs, id) end

local function wait(reason, retryInMs)
  if rank == false then
    enqueue()
    redis.call('ZADD', waitersKey, now + leaseMs, id)
    rank = 0
  end
  expireAll(windowMs + leaseMs)
  return {'wait', reason, math.max(0, math.floor(retryInMs)), rank}
end

if rank ~= false and rank > 0 then return wait('queue', leaseMs) end

local pausedUntil = tonumber(redis.call('HGET', stateKey, 'pausedUntil')) or 0
if pausedUntil > now then return wait('paused', pausedUntil - now) end

local function oldestLeft(key, plus)
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if #first == 0 then return 0 end
  return tonumber(first[2]) + plus - now
end

if maxConcurrent > 0 and redis.call('ZCARD', leasesKey) >= maxConcurrent then
  return wait('concurrency', oldestLeft(leasesKey, 0))
end
if maxRequests > 0 and redis.call('ZCARD', windowKey) >= maxRequests then
  return wait('requests', oldestLeft(windowKey, windowMs))
end
if maxTokens > 0 then
  local used = tonumber(redis.call('HGET', stateKey, 'tokens')) or 0
  if used > 0 and used + estimate > maxTokens then return wait('tokens', oldestLeft(windowKey, windowMs)) end
end

redis.call('ZADD', leasesKey, now + leaseMs, id)
redis.call('ZADD', windowKey, now, id)
redis.call('HSET', tokensKey, id, estimate)
redis.call('HINCRBY', stateKey, 'tokens', estimate)
redis.call('ZREM', queueKey, id)
redis.call('ZREM', waitersKey, id)
if redis.call('ZCARD', queueKey) > 0 then redis.call('PUBLISH', ARGV[8], ARGV[9]) end
expireAll(windowMs + leaseMs)
return {'granted'}
