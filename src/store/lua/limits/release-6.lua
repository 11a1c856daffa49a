--[[
releaseLlmSlot: ends a request's lease (or takes a waiter out of line), corrects its token count to what
the provider reported, and, for a provider's Retry-After, pauses the limit for the whole fleet.

KEYS: leases, window, tokens, state, queue, waiters (see includes/limit-context.lua)
ARGV: [1] id, [2] tokens used (-1: unknown, the estimate stands), [3] pause ms (0: none), [4] wake
  channel, [5] limit id, [6] window ms, [7] keys' TTL ms
Returns: {held} (1 when it held a lease or a place in line, 0 when that had lapsed already)
Events: publishes the limit id on the wake channel when someone waits (a slot, or the head, may be free)
]]
--- @include "limit-trim"
--- @include "limit-expire"

local id, used, pauseMs = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local now = nowMs()
local held = redis.call('ZREM', leasesKey, id) + redis.call('ZREM', queueKey, id)
redis.call('ZREM', waitersKey, id)
if used >= 0 then
  -- Only while the request is still in the window: once it left, its tokens no longer count anyway.
  local reserved = tonumber(redis.call('HGET', tokensKey, id))
  if reserved then
    redis.call('HSET', tokensKey, id, used)
    if used ~= reserved then redis.call('HINCRBY', stateKey, 'tokens', used - reserved) end
  end
end
if pauseMs > 0 then
  local pauseEnd = now + pauseMs
  local pausedUntil = tonumber(redis.call('HGET', stateKey, 'pausedUntil')) or 0
  if pauseEnd > pausedUntil then redis.call('HSET', stateKey, 'pausedUntil', pauseEnd) end
end
trim(now, tonumber(ARGV[6]))
if redis.call('ZCARD', queueKey) > 0 then redis.call('PUBLISH', ARGV[4], ARGV[5]) end
expireAll(tonumber(ARGV[7]))
return {held > 0 and 1 or 0}
