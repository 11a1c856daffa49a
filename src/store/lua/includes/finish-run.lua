--- @include "state-cache"
--- @include "emit"

-- Ends the run: final status, event, expiry of every key, and a message for waiting clients.
local function finishRun(status)
  set('status', status)
  set('endedAt', now)
  flush()
  emit('run.' .. status)
  local ttl = tonumber(get('ttl')) or 604800
  for i = 1, 4 do redis.call('EXPIRE', KEYS[i], ttl) end
  redis.call('EXPIRE', fanKey, ttl)
  redis.call('PUBLISH', endedChannel, status)
end
