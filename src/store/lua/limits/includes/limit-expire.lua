--- @include "limit-context"

--- An idle limit's keys vanish on their own (nothing in flight, nobody waiting, the window past).
local function expireAll(ttlMs)
  for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, ttlMs) end
end
