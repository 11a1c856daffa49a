--[[
The fixed head of every limit script: the limit's six keys (one hash tag, `{llm:<limitId>}`, so a script
touches one slot on Redis Cluster), and Redis's own clock (the same for every worker, whatever their clocks
say).

  KEYS[1] leases   ZSET lease id -> expiry (epoch ms): requests in flight; a crashed worker's lease lapses
  KEYS[2] window   ZSET request id -> when it was granted (epoch ms): requests of the current window
  KEYS[3] tokens   HASH request id -> tokens it counts (the estimate, then the provider's real figure)
  KEYS[4] state    HASH tokens (sum of KEYS[3] over the window), seq (last ticket), pausedUntil (epoch ms)
  KEYS[5] queue    ZSET waiter id -> ticket number: FIFO order; only the head may take a slot
  KEYS[6] waiters  ZSET waiter id -> expiry (epoch ms): a waiter whose worker died leaves the line
]]
local leasesKey, windowKey, tokensKey, stateKey, queueKey, waitersKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6] -- luacheck: ignore 211 (not every script uses every key)

local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
