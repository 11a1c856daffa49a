--[[
startNode: claims a node for execution and reads what it needs, in one round trip.

KEYS: state, ctx, outputs, events (see includes/run-context.lua)
ARGV: runId, now, endedChannel, abortChannel,
      [5] nodeId, [6] node index (1-based; informational), [7] workerId,
      [8] mode: 'start' (claim and read) or 'resume' (a running subflow node whose child ended: read only),
      [9] what the node reads: [context, outputs] as JSON (each '*' or a list of names), '' for nothing,
      [10..] other start nodes to claim alongside it (a run's start job): node id, its reads as in [9], ...
Returns:
  {'run', version, blueprintId, attempt, contextReply, outputsReply, siblings}: execute it. A reply is
    HGETALL's flat list when the node needs everything, else HMGET's values in the order of its needs.
    `siblings` is a flat list of 5 entries per other start node that needs the caller: 'run', id,
    attempt, contextReply, outputsReply (claimed) or 'done', id, readied, {}, {} (already completed).
  {'done', readied}: already completed; `readied` lists (comma-joined) the nodes its completion made
    ready that may lack a job, so a redelivered job re-enqueues them in case the first worker died before
    it could: queued and never claimed, running inside another node's job (`injob`, see includes/claim),
    or done (their own successors may be so). Not a node queued for a retry (its retry job runs it, after
    its delay), nor one running in a job of its own (that job is redelivered itself).
  {'ended', runStatus, parent}: the run is over; `parent` (a parent link or '') lets a redelivered
    job of a child run's last node tell the parent again, in case the first worker died before it could.
  {'parked', nodeStatus, wake, attempt}: the node is waiting or sleeping (parked by wait-node, no job
    on purpose); `wake` is its wake time (epoch ms) or '', so a redelivered job can add the wake job again
    in case the worker that parked it died before it could.
  {'skip', reason}: nothing to do (node skipped/failed/cancelled or not ready).
Events: node.started
]]
--- @include "state-cache"
--- @include "read-needs"
--- @include "claim"
--- @include "parent-of"

local nodeId, workerId, mode, needs = ARGV[5], ARGV[7], ARGV[8], ARGV[9]
local fields = {'status', 'version', 'blueprintId', 'parent', nodeId .. '.status', nodeId .. '.attempts', nodeId .. '.readied', nodeId .. '.wake', nodeId .. '.injob'}
for i = 10, #ARGV - 1, 2 do
  for _, field in ipairs({'.status', '.attempts', '.readied'}) do fields[#fields + 1] = ARGV[i] .. field end
end
load(unpack(fields))
local runStatus = get('status')
if not runStatus then return {'skip', 'run not found'} end
if runStatus ~= 'running' then return {'ended', runStatus, parentOf()} end

-- What a done node's completion made ready and may lack a job (see the header).
local function readiedToEnqueue(id)
  local again = {}
  for next in string.gmatch(get(id .. '.readied') or '', '[^,]+') do
    if cache[next .. '.status'] == nil then load(next .. '.status', next .. '.attempts', next .. '.injob') end
    local st = get(next .. '.status')
    local never = st == 'queued' and (tonumber(get(next .. '.attempts')) or 0) == 0
    if never or (st == 'running' and get(next .. '.injob') == '1') or st == 'done' then again[#again + 1] = next end
  end
  return table.concat(again, ',')
end

local status = get(nodeId .. '.status')
if status == 'done' then return {'done', readiedToEnqueue(nodeId)} end
if status == 'waiting' or status == 'sleeping' then
  return {'parked', status, get(nodeId .. '.wake') or '', tonumber(get(nodeId .. '.attempts')) or 1}
end
local attempt
if mode == 'resume' then
  if status ~= 'running' then return {'skip', 'node ' .. (status or 'pending')} end
  attempt = tonumber(get(nodeId .. '.attempts')) or 1
else
  if status ~= 'queued' and status ~= 'running' then return {'skip', 'node ' .. (status or 'pending')} end
  attempt = claim(nodeId, workerId, false)
end
local siblings = {}
for i = 10, #ARGV - 1, 2 do
  local id, reads = ARGV[i], ARGV[i + 1]
  local st = get(id .. '.status')
  if st == 'queued' or st == 'running' then
    local ctx, out = readNeeds(reads)
    for _, v in ipairs({'run', id, claim(id, workerId, true), ctx, out}) do siblings[#siblings + 1] = v end
  elseif st == 'done' then
    for _, v in ipairs({'done', id, readiedToEnqueue(id), {}, {}}) do siblings[#siblings + 1] = v end
  end
end
flush()
local ctx, out = readNeeds(needs)
return {'run', get('version'), get('blueprintId'), attempt, ctx, out, siblings}
