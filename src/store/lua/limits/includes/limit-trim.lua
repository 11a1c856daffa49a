--- @include "limit-context"

--- Drops lapsed leases, waiters gone quiet and requests older than the window (their tokens with them).
local function trim(now, windowMs)
  redis.call('ZREMRANGEBYSCORE', leasesKey, '-inf', now)
  local gone = redis.call('ZRANGEBYSCORE', waitersKey, '-inf', now, 'LIMIT', 0, 1000)
  for _, id in ipairs(gone) do
    redis.call('ZREM', queueKey, id)
    redis.call('ZREM', waitersKey, id)
  end
  local cutoff = now - windowMs
  while true do
    local old = redis.call('ZRANGEBYSCORE', windowKey, '-inf', cutoff, 'LIMIT', 0, 1000)
    if #old == 0 then break end
    local counted = redis.call('HMGET', tokensKey, unpack(old))
    local sum = 0
    for _, n in ipairs(counted) do sum = sum + (tonumber(n) or 0) end
    if sum ~= 0 then redis.call('HINCRBY', stateKey, 'tokens', -sum) end
    redis.call('HDEL', tokensKey, unpack(old))
    redis.call('ZREM', windowKey, unpack(old))
  end
end
