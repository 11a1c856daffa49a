--[[
takeLease: the recovery lease passes from a holder known dead to a new holder, only while the dead one
still holds it (compare and set: two watchers that both saw it die cannot both take it, and a lease that
passed to someone else meanwhile stays theirs).

KEYS: the lease key
ARGV: [1] the dead holder, [2] the new holder, [3] the lease's time to live, ms
Returns: 1 when taken, else 0
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
