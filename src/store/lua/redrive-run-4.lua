--[[
redriveRun: a failed or cancelled run runs its unfinished part again. Done nodes keep their status,
outputs and the arrivals they recorded on their successors; skipped nodes stay skipped (a skip is decided
by done nodes' edges alone: a failure never skips, it cancels). Every other node is reset to pending
(attempts 0 but for a node parked with a timed wake, whose wake job names its attempt; error, times,
worker and park fields cleared), except a subflow/loop node with a child run (`child`) or a map node
that fanned out (`fanBase`): those are redriven in place, staying running and
waiting for their child runs, which the caller redrives in turn (a map keeps its collected values; the
child that halted it and the ones it had in flight are the children to redrive). A reset node is ready
when it has no incoming edge, when its one predecessor is done (had that edge been skipped the node would
be skipped), or when its recorded arrivals fire it (`arrived`/`taken`, as complete-node counts them). The
run is running again: remaining recounted, error, cancelReason and endedAt cleared, `redrives` + 1, and
its keys no longer expire.

KEYS: state, ctx, outputs, events (see includes/run-context.lua)
ARGV: runId, now, endedChannel, abortChannel
Returns: {'redriven', redrives, version, deadline or '', readyCsv, childRunId...} (the run's blueprint
  version and deadline, the nodes now queued, comma-joined, and the child runs to redrive in place)
  | {'not-redrivable', runStatus, parent} (parent link or '') | {'missing'}
Events: run.redriven (redrives, ready, reset, inPlace, children)
]]
--- @include "state-cache"
--- @include "emit"
--- @include "parent-of"

load('status', 'topo', 'redrives', 'parent', 'version', 'deadline')
local runStatus = get('status')
if not runStatus then return {'missing'} end
if runStatus ~= 'failed' and runStatus ~= 'cancelled' then return {'not-redrivable', runStatus, parentOf()} end
local topo = cjson.decode(get('topo'))
local ids = topo.ids

local PER_NODE = {'.status', '.arrived', '.taken', '.child', '.fanBase', '.fanRunning', '.fanHalted', '.fanFailed', '.fanTotal', '.wake'}
local fields = {}
for _, id in ipairs(ids) do
  for _, name in ipairs(PER_NODE) do fields[#fields + 1] = id .. name end
end
load(unpack(fields))

-- The predecessor of each node with one incoming edge.
local onlyFrom = {}
for from, targets in ipairs(topo.out) do
  for _, target in ipairs(targets) do
    if topo.indeg[target] == 1 then onlyFrom[target] = from end
  end
end

-- Fields a reset node loses (a field Redis lacks reads as pending / absent).
local RESET = {'status', 'attempts', 'error', 'startedAt', 'endedAt', 'worker', 'readied', 'meta', 'child', 'childIndex',
  'children', 'since', 'wake', 'prompt', 'actions', 'wakeAction', 'fanBase', 'fanBlueprint', 'fanTotal', 'fanLimit',
  'fanNext', 'fanCompleted', 'fanFailed', 'fanHalted', 'fanRunning'}

local remaining, ready, reset, inPlace, children = 0, {}, {}, {}, {}
local toDelete = {}
for index, id in ipairs(ids) do
  local status = get(id .. '.status')
  if status ~= 'done' and status ~= 'skipped' then
    remaining = remaining + 1
    local fanBase, child = get(id .. '.fanBase'), get(id .. '.child')
    if fanBase then
      -- A map in place: the child that halted it and those in flight run again; collected values stay.
      local again = {}
      for i in string.gmatch(get(id .. '.fanRunning') or '', '[^,]+') do again[#again + 1] = i end
      local halted = get(id .. '.fanHalted')
      if halted then
        again[#again + 1] = halted
        redis.call('HDEL', fanKey, id .. ':value:' .. halted, id .. ':next:' .. halted)
        set(id .. '.fanFailed', math.max(0, (tonumber(get(id .. '.fanFailed')) or 0) - 1))
        toDelete[#toDelete + 1] = id .. '.fanHalted'
      end
      -- Nothing to run again (every child was in when the run ended): the last child, already ended, is
      -- asked again, and its collection (answered as the first time) hands the node all values.
      if #again == 0 then again[1] = tostring(math.max(0, (tonumber(get(id .. '.fanTotal')) or 1) - 1)) end
      set(id .. '.fanRunning', table.concat(again, ','))
      for _, i in ipairs(again) do children[#children + 1] = fanBase .. '-' .. i end
    elseif child then
      children[#children + 1] = child
    end
    if fanBase or child then
      set(id .. '.status', 'running')
      toDelete[#toDelete + 1] = id .. '.error'
      toDelete[#toDelete + 1] = id .. '.endedAt'
      inPlace[#inPlace + 1] = id
    else
      -- A node parked with a timed wake keeps its attempts: its wake job's id names the attempt
      -- (`.wake<attempt>`), and the old one may still be delayed in the queue.
      local keepAttempts = (get(id .. '.wake') or '') ~= ''
      for _, name in ipairs(RESET) do
        if not (keepAttempts and name == 'attempts') then toDelete[#toDelete + 1] = id .. '.' .. name end
      end
      reset[#reset + 1] = id
      local indeg = topo.indeg[index]
      local fire
      if indeg == 0 then
        fire = true
      elseif indeg == 1 then
        fire = get(ids[onlyFrom[index]] .. '.status') == 'done'
      else
        local arrived, taken = tonumber(get(id .. '.arrived')) or 0, tonumber(get(id .. '.taken')) or 0
        if topo.any[index] == 1 then fire = taken > 0 else fire = arrived == indeg and taken > 0 end
      end
      if fire then ready[#ready + 1] = id end
    end
  end
end

-- Deleted first: a ready node's status is written after (HSET in flush).
for from = 1, #toDelete, 1000 do
  redis.call('HDEL', stateKey, unpack(toDelete, from, math.min(#toDelete, from + 999)))
end
for _, id in ipairs(ready) do set(id .. '.status', 'queued') end
local redrives = (tonumber(get('redrives')) or 0) + 1
set('status', 'running')
set('remaining', remaining)
set('redrives', redrives)
redis.call('HDEL', stateKey, 'error', 'cancelReason', 'endedAt')
flush()
for i = 1, 4 do redis.call('PERSIST', KEYS[i]) end
redis.call('PERSIST', fanKey)
emit('run.redriven', nil, {'redrives', redrives, 'ready', table.concat(ready, ','), 'reset', table.concat(reset, ','),
  'inPlace', table.concat(inPlace, ','), 'children', table.concat(children, ',')})
return {'redriven', redrives, get('version'), get('deadline') or '', table.concat(ready, ','), unpack(children)}
