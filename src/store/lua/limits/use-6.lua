--[[
readLlmLimitUse: one limit's use now, after dropping what has lapsed (for GET /limits, switchyard limits).

KEYS: leases, window, tokens, state, queue, waiters (see includes/limit-context.lua)
ARGV: [1] window ms
Returns: {inFlight, requests, tokens, pausedForMs, waiting}: requests in flight, requests and tokens
  counted in the current window, how long the limit stays paused (0: not paused), requests in line
Events: none
]]
--- @include "limit-trim"

local now = nowMs()
trim(now, tonumber(ARGV[1]))
local pausedUntil = tonumber(redis.call('HGET', stateKey, 'pausedUntil')) or 0
return {
  redis.call('ZCARD', leasesKey),
  redis.call('ZCARD', windowKey),
  tonumber(redis.call('HGET', stateKey, 'tokens')) or 0,
  math.max(0, pausedUntil - now),
  redis.call('ZCARD', queueKey),
}
