--- @include "state-cache"
--- @include "emit"

-- Claims a queued (or redelivered running) node for a worker: running, one more attempt. `inJob` when the
-- node runs inside another node's job (a successor claimed by a completion, a start node claimed by the
-- run's start job): no job of its own carries it, so a redelivery of the job that carried it enqueues it
-- (start-node's 'done' path: `<node>.injob` is '1'). A node claimed by its own job clears the mark.
local function claim(nodeId, workerId, inJob)
  local attempt = (tonumber(get(nodeId .. '.attempts')) or 0) + 1
  set(nodeId .. '.status', 'running')
  set(nodeId .. '.startedAt', now)
  set(nodeId .. '.worker', workerId)
  set(nodeId .. '.attempts', attempt)
  if inJob then set(nodeId .. '.injob', '1') elseif get(nodeId .. '.injob') == '1' then set(nodeId .. '.injob', '0') end
  emit('node.started', nodeId, {'attempt', attempt, 'worker', workerId})
  return attempt
end
