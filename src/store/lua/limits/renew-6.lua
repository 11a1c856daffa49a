--[[
renewLlmLeases: extends the leases of this worker's requests in flight and the places in line of its
waiters (one call per limit per renewal tick, however many there are), so neither lapses while alive.

KEYS: leases, window, tokens, state, queue, waiters (see includes/limit-context.lua)
ARGV: [1] lease ms, [2] keys' TTL ms, [3...] ids
Returns: {renewed} (how many ids still held a lease or a place in line)
Events: none
]]
--- @include "limit-expire"

local leaseMs = tonumber(ARGV[1])
local now = nowMs()
local renewed = 0
for i = 3, #ARGV do
  local id = ARGV[i]
  renewed = renewed + redis.call('ZADD', leasesKey, 'XX', 'CH', now + leaseMs, id)
  renewed = renewed + redis.call('ZADD', waitersKey, 'XX', 'CH', now + leaseMs, id)
end
expireAll(tonumber(ARGV[2]))
return {renewed}
