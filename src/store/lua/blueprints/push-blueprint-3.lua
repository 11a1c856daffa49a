--[[
pushBlueprint: stores a blueprint version in the registry of stored blueprints (which never expires) and
makes it its id's latest; in 'seed' mode only when the id has no stored version yet, so a bundled
blueprint is stored once and a pushed version always wins over it afterwards.

KEYS: [1] latest (hash: id -> version), [2] versions of this id (sorted set: version -> first push time),
      [3] the version's stored JSON (string)
ARGV: [1] blueprint id, [2] version (content hash), [3] blueprint JSON, [4] now (epoch ms), [5] 'push' | 'seed'
The same content gives the same version: pushing it again changes nothing but which version is latest
(pushing an older version's content again makes it the latest: a roll-back).
Returns: {'created', previousLatest or ''} (a version new to this id)
  | {'stored', previousLatest or ''} (the version was stored before; it is now the latest)
  | {'exists', latest} (seed mode: the id has a stored version already; nothing changed)
Events: none
]]
local latestKey, versionsKey, storedKey = KEYS[1], KEYS[2], KEYS[3]
local id, version, json, now, mode = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]

local latest = redis.call('HGET', latestKey, id)
if mode == 'seed' and latest then return {'exists', latest} end
local outcome = 'stored'
if not redis.call('ZSCORE', versionsKey, version) then
  redis.call('ZADD', versionsKey, now, version)
  outcome = 'created'
end
-- Content-addressed: an existing value is the same text, so writing it again is harmless.
redis.call('SET', storedKey, json)
redis.call('HSET', latestKey, id, version)
return {outcome, latest or ''}
