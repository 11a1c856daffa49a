--[[
Reads of the state hash go through a cache, and every change is written with one HSET at the end
(`flush`), so a transition costs a handful of commands however many fields it touches.
]]
--- @include "run-context"

local cache, dirty, dirtyList = {}, {}, {}
local function load(...)
  local fields = {...}
  local values = redis.call('HMGET', stateKey, unpack(fields))
  -- A field changed in this script keeps its new value: Redis has not seen it yet.
  for i, field in ipairs(fields) do if not dirty[field] then cache[field] = values[i] end end
end
local function get(field)
  if cache[field] == nil then cache[field] = redis.call('HGET', stateKey, field) end
  return cache[field]
end
local function set(field, value)
  cache[field] = value
  if not dirty[field] then
    dirty[field] = true
    dirtyList[#dirtyList + 1] = field
  end
end
local function flush()
  if #dirtyList == 0 then return end
  local args = {}
  for _, field in ipairs(dirtyList) do
    args[#args + 1] = field
    args[#args + 1] = cache[field]
  end
  redis.call('HSET', stateKey, unpack(args))
  dirty, dirtyList = {}, {}
end
