--[[
startFanOut: a running node fans out to child runs (a map): stores each child's input, and marks the
first ones to start (at most the node's limit) as running. The node stays running, holding no worker
slot, until every child is collected (collect-child-4.lua). A second call for the same node (a
redelivered job) changes nothing and hands back the children in flight, to be started again: their
ids are derived (`<base>-<index>`), so starting them again is harmless.

KEYS: state, ctx, outputs, events (see includes/run-context.lua; the fan hash is derived: includes/fan-out.lua)
ARGV: runId, now, endedChannel, abortChannel,
      [5] nodeId, [6] child id base, [7] blueprintId, [8] children in flight at most,
      [9] the input every child shares (JSON), [10..] each child's own input (JSON), in order
Returns: {'start', base, blueprintId, commonJson, index, inputJson, ...}: the children to start
  | {'stale', runStatus} | {'not-running', nodeStatus}
Events: node.progress (total, completed, failed, running)
]]
--- @include "state-cache"
--- @include "emit"
--- @include "fan-out"

local nodeId = ARGV[5]
loadFan(nodeId)
local runStatus = get('status')
if runStatus ~= 'running' then return {'stale', tostring(runStatus)} end
local status = get(nodeId .. '.status')
if status ~= 'running' then return {'not-running', status or 'pending'} end
if get(nodeId .. '.fanBase') then
  return childrenReply('start', nodeId, splitIndices(get(nodeId .. '.fanRunning')))
end

local total = #ARGV - 9
redis.call('HSET', fanKey, nodeId .. ':common', ARGV[9])
for from = 0, total - 1, FAN_CHUNK do
  local fields = {}
  for index = from, math.min(total, from + FAN_CHUNK) - 1 do
    fields[#fields + 1] = nodeId .. ':in:' .. index
    fields[#fields + 1] = ARGV[10 + index]
  end
  redis.call('HSET', fanKey, unpack(fields))
end
set(nodeId .. '.fanBase', ARGV[6])
set(nodeId .. '.fanBlueprint', ARGV[7])
set(nodeId .. '.fanLimit', ARGV[8])
set(nodeId .. '.fanTotal', total)
set(nodeId .. '.fanNext', 0)
set(nodeId .. '.fanCompleted', 0)
set(nodeId .. '.fanFailed', 0)
set(nodeId .. '.fanRunning', '')
local started = startMore(nodeId)
flush()
emitProgress(nodeId, true)
return childrenReply('start', nodeId, started)
