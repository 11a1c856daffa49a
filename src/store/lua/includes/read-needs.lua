--- @include "run-context"

-- Reads the context keys and outputs a node needs, given as [context, outputs] (each '*' for all: HGETALL,
-- else a list: HMGET), as that pair's JSON, or as '' for nothing.
local function readNeeds(need)
  if need == '' then return {}, {} end
  if type(need) == 'string' then need = cjson.decode(need) end
  local function read(key, names)
    if names == '*' then return redis.call('HGETALL', key) end
    if #names == 0 then return {} end
    return redis.call('HMGET', key, unpack(names))
  end
  return read(ctxKey, need[1]), read(outKey, need[2])
end
