--- @include "state-cache"
--- @include "emit"

--[[
A fanning-out node's children (a map's items). Bookkeeping lives in the state hash, as the node's
fields: fanBase (a child's run id is `<fanBase>-<index>`, index from 0), fanBlueprint, fanTotal,
fanLimit (children in flight at most), fanNext (the next index to start), fanCompleted, fanFailed,
fanHalted (the index of the child that failed the node), fanRunning (indices in flight, comma-joined).
Per-child data lives in the run's fan hash (fanKey, see run-context.lua): `<nodeId>:common` (the input all children share),
`<nodeId>:in:<i>` (child i's own input), `<nodeId>:value:<i>` (its collected value, JSON) and
`<nodeId>:next:<i>` (the indices started when child i was collected, so a redelivery starts them again).
]]

local FAN_FIELDS = {'fanBase', 'fanBlueprint', 'fanTotal', 'fanLimit', 'fanNext', 'fanCompleted', 'fanFailed', 'fanHalted', 'fanRunning'}
-- Fields per HSET/HMGET: Lua's unpack stops at a few thousand values.
local FAN_CHUNK = 1000

local function loadFan(nodeId)
  local fields = {'status', nodeId .. '.status'}
  for _, name in ipairs(FAN_FIELDS) do fields[#fields + 1] = nodeId .. '.' .. name end
  load(unpack(fields))
end

local function fanNumber(nodeId, name)
  return tonumber(get(nodeId .. '.' .. name)) or 0
end

local function splitIndices(csv)
  local list = {}
  for index in string.gmatch(csv or '', '[^,]+') do list[#list + 1] = tonumber(index) end
  return list
end

-- Marks children as running up to the node's limit; returns the indices to start now.
local function startMore(nodeId)
  local running = splitIndices(get(nodeId .. '.fanRunning'))
  local nextIndex, total, limit = fanNumber(nodeId, 'fanNext'), fanNumber(nodeId, 'fanTotal'), fanNumber(nodeId, 'fanLimit')
  local started = {}
  while #running < limit and nextIndex < total do
    running[#running + 1] = nextIndex
    started[#started + 1] = nextIndex
    nextIndex = nextIndex + 1
  end
  set(nodeId .. '.fanNext', nextIndex)
  set(nodeId .. '.fanRunning', table.concat(running, ','))
  return started
end

-- {tag, base, blueprintId, commonJson, index, inputJson, ...}: the children to start.
local function childrenReply(tag, nodeId, indices)
  local reply = {tag, get(nodeId .. '.fanBase'), get(nodeId .. '.fanBlueprint'), redis.call('HGET', fanKey, nodeId .. ':common') or '{}'}
  if #indices > 0 then
    local fields = {}
    for i, index in ipairs(indices) do fields[i] = nodeId .. ':in:' .. index end
    local inputs = redis.call('HMGET', fanKey, unpack(fields))
    for i, index in ipairs(indices) do
      reply[#reply + 1] = index
      reply[#reply + 1] = inputs[i] or '{}'
    end
  end
  return reply
end

-- {'all', valueJson...}: every child's value, in input order.
local function allReply(nodeId) -- luacheck: no unused (collect-child only)
  local reply = {'all'}
  local total = fanNumber(nodeId, 'fanTotal')
  for from = 0, total - 1, FAN_CHUNK do
    local fields = {}
    for index = from, math.min(total, from + FAN_CHUNK) - 1 do fields[#fields + 1] = nodeId .. ':value:' .. index end
    local values = redis.call('HMGET', fanKey, unpack(fields))
    for i = 1, #fields do reply[#reply + 1] = values[i] or 'null' end
  end
  return reply
end

-- The run ids of the children in flight.
local function runningChildren(nodeId) -- luacheck: no unused (collect-child only)
  local base, ids = get(nodeId .. '.fanBase'), {}
  for _, index in ipairs(splitIndices(get(nodeId .. '.fanRunning'))) do ids[#ids + 1] = base .. '-' .. index end
  return ids
end

-- A node.progress event: when the fan-out starts, on a failure, every 1% of the children, at the end.
local function emitProgress(nodeId, force)
  local total, completed, failed = fanNumber(nodeId, 'fanTotal'), fanNumber(nodeId, 'fanCompleted'), fanNumber(nodeId, 'fanFailed')
  local ended = completed + failed
  if force or ended == total or ended % math.max(1, math.floor(total / 100)) == 0 then
    local running = #splitIndices(get(nodeId .. '.fanRunning'))
    emit('node.progress', nodeId, {'total', total, 'completed', completed, 'failed', failed, 'running', running})
  end
end
