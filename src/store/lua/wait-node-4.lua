--[[
waitNode: a node parks and gives up its worker slot. Two kinds of park:
  - a subflow node started its child run ([7] ''): it stays running until the child ends (then a resume
    job completes or fails it);
  - a `wait` or durable `sleep` node ([7] 'waiting' or 'sleeping'): it becomes that status, with the time
    it parked (`since`) and, for a timed park, `wake` (epoch ms; the caller adds a delayed wake job); a
    waiting node also keeps its prompt, the actions a signal may choose, and the action its timeout
    completes it with. It completes later through complete-node (a signal or its wake job; the first
    wins). A parked node has no job on purpose: start-node answers 'parked' for it.

KEYS: state, ctx, outputs, events (see includes/run-context.lua)
ARGV: runId, now, endedChannel, abortChannel, [5] nodeId, [6] child run id or '',
      [7] park status: '' (a subflow: stays running), 'waiting' or 'sleeping',
      [8] wake time (epoch ms) or '', [9] prompt or '', [10] actions comma-joined or '',
      [11] the action a timeout completes it with, or ''
Returns: {'waiting'} (a subflow node) | {'parked'} | {'stale', runStatus} | {'not-running', nodeStatus}
Events: node.waiting (with the child run id; or, for a wait node, attempt, wake, prompt and actions),
  node.sleeping (attempt, wake)
]]
--- @include "state-cache"
--- @include "emit"

local nodeId, child, parkAs = ARGV[5], ARGV[6], ARGV[7] or ''
load('status', nodeId .. '.status', nodeId .. '.attempts')
local runStatus = get('status')
if runStatus ~= 'running' then return {'stale', tostring(runStatus)} end
if parkAs == '' then
  set(nodeId .. '.child', child)
  flush()
  if get(nodeId .. '.status') ~= 'running' then return {'not-running', get(nodeId .. '.status') or 'pending'} end
  emit('node.waiting', nodeId, {'child', child})
  return {'waiting'}
end

local status = get(nodeId .. '.status')
if status ~= 'running' then return {'not-running', status or 'pending'} end
local wake, prompt, actions, wakeAction = ARGV[8], ARGV[9], ARGV[10], ARGV[11]
set(nodeId .. '.status', parkAs)
set(nodeId .. '.since', now)
-- Every park field is written, '' when absent, so nothing of an earlier park lingers.
set(nodeId .. '.wake', wake)
set(nodeId .. '.prompt', prompt)
set(nodeId .. '.actions', actions)
set(nodeId .. '.wakeAction', wakeAction)
flush()
local event = {'attempt', get(nodeId .. '.attempts') or '1'}
if wake ~= '' then event[#event + 1] = 'wake'; event[#event + 1] = wake end
if parkAs == 'waiting' then
  event[#event + 1] = 'prompt'; event[#event + 1] = prompt
  event[#event + 1] = 'actions'; event[#event + 1] = actions
end
emit('node.' .. parkAs, nodeId, event)
return {'parked'}
