--[[
completeNode: applies a node's result atomically and exactly once. Mirrors `completeNode` in
src/engine/transitions.ts: stores the output and context writes, marks the node done, records each
outgoing edge's arrival (taken or skipped), propagates skips (dead-path elimination), marks nodes that
became ready as queued, and completes the run when no node is left. A parked node (waiting or sleeping,
see wait-node) is completed by its signal or its wake job the same way; whichever comes second is a
duplicate. With a worker id in ARGV[11] it
also claims up to ARGV[12] of the nodes that became ready for that worker (which runs them next,
without a queue round trip) and returns what each of them needs.

KEYS: state, ctx, outputs, events (see includes/run-context.lua)
ARGV: runId, now, endedChannel, abortChannel,
      [5] nodeId, [6] node index (1-based; informational), [7] output JSON or '' for none,
      [8] taken flags, one '1'/'0' per outgoing edge in topology order, [9] action or '',
      [10] node meta JSON (usage, provider) or '', [11] workerId to claim ready nodes for, or '',
      [12] how many ready nodes to claim at most,
      [13..] the node's part of the topology, from the worker's copy of the blueprint version so that the
      common case decodes no topology (encodeTopology in src/store/script-args.ts): E, the target
      index of each of its E outgoing edges, D, then per described node: index, id, in-degree, '1' for an
      'any' join else '0', needs JSON or '', its number of outgoing edges and their target indices;
      then the context writes: key, JSON value, ...
      A node not described (a skip chain past the description) is read from the stored topology.
Returns: {'ok', runStatus, parent, readyCsv, claimed...} where parent is the parent link when this
  completion ended a child run (else ''), readyCsv the nodes that became ready (claimed ones included)
  and claimed a flat list of {nodeId, attempt, ctxReply, outReply} for each claimed node
  | {'stale', runStatus, parent}: the run is not running; `parent` is its parent link when it completed
    with this node done (a completion whose reply was lost may have been the one that ended it), else ''
  | {'duplicate', nodeStatus, readyCsv, claimed...}: the node is not running (any more). When it is done,
    this call may be a resend of the completion that made it so (a reply lost with a connection; ioredis
    sends unanswered commands again after reconnecting): readyCsv is what that completion made ready and
    is still queued without ever having been claimed (its job may never have been added; job ids make
    adding it again harmless), and claimed the nodes it claimed for this same worker (ARGV[11]) that are
    still running for it, with the same attempt and what each needs: the caller never heard of them
  | {'limit', contextBytes}: the context writes would take the run's context over MAX_CONTEXT_BYTES
    (bytes of JSON values, kept in the state field ctxBytes); nothing was applied
Events: node.done (with its attempt, start, worker, and the nodes it made ready or skipped),
  node.started (claimed nodes), run.completed
]]
--- @include "state-cache"
--- @include "emit"
--- @include "finish-run"
--- @include "read-needs"
--- @include "claim"
--- @include "attempt-fields"
--- @include "parent-of"

-- Limits.MAX_CONTEXT_BYTES in src/types/limits.ts (a test keeps the two equal).
local MAX_CONTEXT_BYTES = 1048576

local nodeId, output, taken, action, meta, claimFor, claimMax = ARGV[5], ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11], tonumber(ARGV[12])
local edgeCount = tonumber(ARGV[13])
local known = {}
local at = 15 + edgeCount
for _ = 1, tonumber(ARGV[14 + edgeCount]) do
  local outCount = tonumber(ARGV[at + 5])
  local out = {}
  for k = 1, outCount do out[k] = tonumber(ARGV[at + 5 + k]) end
  known[tonumber(ARGV[at])] = {ARGV[at + 1], tonumber(ARGV[at + 2]), ARGV[at + 3] == '1', ARGV[at + 4], out}
  at = at + 6 + outCount
end
local writesFrom = at
-- One read for the run, this node and every described node (status, arrival counts, attempts for a claim).
local fields = {'status', 'remaining', 'parent', 'ctxBytes', nodeId .. '.status', nodeId .. '.attempts', nodeId .. '.startedAt', nodeId .. '.worker'}
for _, info in pairs(known) do
  local id = info[1]
  fields[#fields + 1] = id .. '.status'
  fields[#fields + 1] = id .. '.attempts'
  if info[2] > 1 then
    fields[#fields + 1] = id .. '.arrived'
    fields[#fields + 1] = id .. '.taken'
  end
end
load(unpack(fields))
local runStatus = get('status')
local status = get(nodeId .. '.status')
if runStatus ~= 'running' then
  return {'stale', tostring(runStatus), (runStatus == 'completed' and status == 'done') and parentOf() or ''}
end

-- Nodes described in ARGV; any other (a skip chain past the description) from the stored topology.
local topo
local function describe(target)
  local info = known[target]
  if info then return info end
  topo = topo or cjson.decode(redis.call('HGET', stateKey, 'topo'))
  info = {topo.ids[target], topo.indeg[target], topo.any[target] == 1, topo.needs[target], topo.out[target]}
  known[target] = info
  return info
end

-- Appends a claimed node to a reply: {nodeId, attempt, ctxReply, outReply}.
local function addClaim(reply, id, attempt, needs)
  local ctx, out = readNeeds(needs)
  reply[#reply + 1] = id
  reply[#reply + 1] = attempt
  reply[#reply + 1] = ctx
  reply[#reply + 1] = out
end

-- The reply a resent completion should have had (see the header): nothing is changed.
local function replay()
  local reply = {'duplicate', 'done', ''}
  local readied = get(nodeId .. '.readied')
  if not readied or readied == '' then return reply end
  local queued = {}
  for id in string.gmatch(readied, '[^,]+') do
    load(id .. '.status', id .. '.attempts', id .. '.worker')
    local readyStatus, attempts = get(id .. '.status'), tonumber(get(id .. '.attempts')) or 0
    if readyStatus == 'queued' and attempts == 0 then
      queued[#queued + 1] = id
    elseif readyStatus == 'running' and claimFor ~= '' and get(id .. '.worker') == claimFor then
      local needs
      for _, info in pairs(known) do if info[1] == id then needs = info[4] end end
      if needs == nil then
        topo = topo or cjson.decode(redis.call('HGET', stateKey, 'topo'))
        for i, topoId in ipairs(topo.ids) do if topoId == id then needs = topo.needs[i] end end
      end
      addClaim(reply, id, attempts, needs or '')
    end
  end
  reply[3] = table.concat(queued, ',')
  return reply
end

if status == 'done' then return replay() end
-- A parked node (waiting, sleeping) completes here too, from its signal or its wake job: the first wins.
if status ~= 'running' and status ~= 'queued' and status ~= 'waiting' and status ~= 'sleeping' then return {'duplicate', status or 'pending', ''} end

if #ARGV >= writesFrom then
  -- The run's context size after the writes, from each value's stored length: checked before anything is applied.
  local ctxBytes = tonumber(get('ctxBytes')) or 0
  for i = writesFrom, #ARGV - 1, 2 do
    ctxBytes = ctxBytes + #ARGV[i + 1] - redis.call('HSTRLEN', ctxKey, ARGV[i])
  end
  if ctxBytes > MAX_CONTEXT_BYTES then return {'limit', ctxBytes} end
  set('ctxBytes', ctxBytes)
end
if output ~= '' then redis.call('HSET', outKey, nodeId, output) end
if #ARGV >= writesFrom then redis.call('HSET', ctxKey, unpack(ARGV, writesFrom)) end
set(nodeId .. '.status', 'done')
set(nodeId .. '.endedAt', now)
if meta ~= '' then set(nodeId .. '.meta', meta) end
local remaining = tonumber(get('remaining')) - 1

local ready, readyAt, skipped = {}, {}, {}
-- Work list of arrivals {target index, taken}; skip chains append to it.
local queue, head = {}, 1
for e = 1, edgeCount do
  queue[#queue + 1] = {tonumber(ARGV[13 + e]), string.sub(taken, e, e) == '1'}
end
while head <= #queue do
  local target, wasTaken = queue[head][1], queue[head][2]
  head = head + 1
  local info = describe(target)
  local id, indeg, any = info[1], info[2], info[3]
  local arrived, takenCount
  if indeg == 1 then
    -- A single incoming edge decides alone: no arrival counts to keep.
    if cache[id .. '.status'] == nil then load(id .. '.status', id .. '.attempts') end
    arrived, takenCount = 1, wasTaken and 1 or 0
  else
    if cache[id .. '.status'] == nil then load(id .. '.status', id .. '.attempts', id .. '.arrived', id .. '.taken') end
    arrived = (tonumber(get(id .. '.arrived')) or 0) + 1
    takenCount = tonumber(get(id .. '.taken')) or 0
    if wasTaken then takenCount = takenCount + 1 end
    set(id .. '.arrived', arrived)
    set(id .. '.taken', takenCount)
  end
  -- An 'any' join that already fired ignores later arrivals.
  if (get(id .. '.status') or 'pending') == 'pending' then
    local allArrived = arrived == indeg
    local fire
    if any then fire = wasTaken else fire = allArrived and takenCount > 0 end
    if fire then
      set(id .. '.status', 'queued')
      ready[#ready + 1] = id
      readyAt[#readyAt + 1] = target
    elseif allArrived and takenCount == 0 then
      set(id .. '.status', 'skipped')
      set(id .. '.endedAt', now)
      remaining = remaining - 1
      skipped[#skipped + 1] = id
      for _, next in ipairs(info[5]) do queue[#queue + 1] = {next, false} end
    end
  end
end
set('remaining', remaining)
local readyCsv = table.concat(ready, ',')
if #ready > 0 then set(nodeId .. '.readied', readyCsv) end
local doneEvent = attemptFields(nodeId)
if action ~= '' then doneEvent[#doneEvent + 1] = 'action'; doneEvent[#doneEvent + 1] = action end
if #ready > 0 then doneEvent[#doneEvent + 1] = 'ready'; doneEvent[#doneEvent + 1] = readyCsv end
if #skipped > 0 then doneEvent[#doneEvent + 1] = 'skipped'; doneEvent[#doneEvent + 1] = table.concat(skipped, ',') end
emit('node.done', nodeId, doneEvent)

if remaining == 0 then
  finishRun('completed')
  return {'ok', 'completed', parentOf(), readyCsv}
end
local reply = {'ok', 'running', '', readyCsv}
if claimFor ~= '' and #ready > 0 and claimMax > 0 then
  for i = 1, math.min(claimMax, #ready) do
    local claimed = ready[i]
    addClaim(reply, claimed, claim(claimed, claimFor, true), describe(readyAt[i])[4])
  end
end
flush()
return reply
