--[[
releaseNode: a stopping worker gives back nodes it claimed but will not finish (its grace period ended).
Each node still running for that worker goes back to queued with its attempt undone, so the next claim
runs the same attempt again: no failure, no back-off, no retry used up, and a subflow's child run id
(derived from the attempt) stays the same. A node waiting for its child run stays as it is (its resume
job finishes it), and so does one another worker has claimed meanwhile.

KEYS: state, ctx, outputs, events (see includes/run-context.lua)
ARGV: runId, now, endedChannel, abortChannel, [5] workerId, [6..] node ids
Returns: {'ok', releasedCsv} | {'stale', runStatus}
Events: node.released (attempt undone, worker) per node released
]]
--- @include "state-cache"
--- @include "emit"

local workerId = ARGV[5]
local fields = {'status'}
for i = 6, #ARGV do
  for _, suffix in ipairs({'.status', '.attempts', '.worker', '.child'}) do fields[#fields + 1] = ARGV[i] .. suffix end
end
load(unpack(fields))
local runStatus = get('status')
if runStatus ~= 'running' then return {'stale', tostring(runStatus)} end
local released = {}
for i = 6, #ARGV do
  local id = ARGV[i]
  if get(id .. '.status') == 'running' and get(id .. '.worker') == workerId and not get(id .. '.child') then
    local attempt = tonumber(get(id .. '.attempts')) or 1
    set(id .. '.status', 'queued')
    set(id .. '.attempts', math.max(0, attempt - 1))
    set(id .. '.worker', '')
    released[#released + 1] = id
  end
end
flush()
for _, id in ipairs(released) do emit('node.released', id, {'attempt', get(id .. '.attempts'), 'worker', workerId}) end
return {'ok', table.concat(released, ',')}
