--- @include "state-cache"
--- @include "emit"

-- Claims a queued (or redelivered running) node for a worker: running, one more attempt.
local function claim(nodeId, workerId)
  local attempt = (tonumber(get(nodeId .. '.attempts')) or 0) + 1
  set(nodeId .. '.status', 'running')
  set(nodeId .. '.startedAt', now)
  set(nodeId .. '.worker', workerId)
  set(nodeId .. '.attempts', attempt)
  emit('node.started', nodeId, {'attempt', attempt, 'worker', workerId})
  return attempt
end
