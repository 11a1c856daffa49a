--[[
collectChild: one child run of a fanning-out node (a map) ended: records its collected value by index,
and either marks the next children to start (keeping at most the node's limit in flight), or, once
every child is in, hands back all values in input order for the node's result. A child that fails the
node (halt) stops the fan-out: nothing more starts, and the children in flight come back to be
cancelled. Collecting the same child again (a redelivered resume job) changes nothing and answers as
the first time did.

KEYS: state, ctx, outputs, events (see includes/run-context.lua; the fan hash is derived: includes/fan-out.lua)
ARGV: runId, now, endedChannel, abortChannel,
      [5] nodeId, [6] the child's index, [7] '1' when the child did not complete (counted as failed),
      [8] its collected value (JSON), [9] '1' when this child fails the node
Returns: {'start', base, blueprintId, commonJson, index, inputJson, ...}: children to start (maybe none)
  | {'all', valueJson...}: every child is in
  | {'halted', childRunId...}: this child failed the node; the children still in flight
  | {'pending'}: another child failed the node already; nothing to do
  | {'stale', runStatus} | {'not-running', nodeStatus}
Events: node.progress (total, completed, failed, running)
]]
--- @include "state-cache"
--- @include "emit"
--- @include "fan-out"

local nodeId, index, childFailed, value, halt = ARGV[5], ARGV[6], ARGV[7] == '1', ARGV[8], ARGV[9] == '1'
loadFan(nodeId)
local runStatus = get('status')
if runStatus ~= 'running' then return {'stale', tostring(runStatus)} end
local status = get(nodeId .. '.status')
if status ~= 'running' or not get(nodeId .. '.fanBase') then return {'not-running', status or 'pending'} end

local total = fanNumber(nodeId, 'fanTotal')
local valueField = nodeId .. ':value:' .. index
if redis.call('HEXISTS', fanKey, valueField) == 1 then
  -- Collected before: a redelivered job, answered as the first time.
  local halted = get(nodeId .. '.fanHalted')
  if halted == index then return {'halted', unpack(runningChildren(nodeId))} end
  if halted then return {'pending'} end
  if fanNumber(nodeId, 'fanCompleted') + fanNumber(nodeId, 'fanFailed') == total then return allReply(nodeId) end
  return childrenReply('start', nodeId, splitIndices(redis.call('HGET', fanKey, nodeId .. ':next:' .. index)))
end

redis.call('HSET', fanKey, valueField, value)
local running = {}
for _, i in ipairs(splitIndices(get(nodeId .. '.fanRunning'))) do
  if tostring(i) ~= index then running[#running + 1] = i end
end
set(nodeId .. '.fanRunning', table.concat(running, ','))
if childFailed or halt then
  set(nodeId .. '.fanFailed', fanNumber(nodeId, 'fanFailed') + 1)
else
  set(nodeId .. '.fanCompleted', fanNumber(nodeId, 'fanCompleted') + 1)
end
if halt and not get(nodeId .. '.fanHalted') then
  set(nodeId .. '.fanHalted', index)
  flush()
  emitProgress(nodeId, true)
  return {'halted', unpack(runningChildren(nodeId))}
end
if get(nodeId .. '.fanHalted') then
  flush()
  return {'pending'}
end
local started = startMore(nodeId)
redis.call('HSET', fanKey, nodeId .. ':next:' .. index, table.concat(started, ','))
flush()
emitProgress(nodeId, childFailed)
if fanNumber(nodeId, 'fanCompleted') + fanNumber(nodeId, 'fanFailed') == total then return allReply(nodeId) end
return childrenReply('start', nodeId, started)
