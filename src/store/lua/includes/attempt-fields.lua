--- @include "state-cache"

-- Where and when the node's current attempt ran, for its end event.
local function attemptFields(nodeId)
  return {'attempt', get(nodeId .. '.attempts') or '0', 'startedAt', get(nodeId .. '.startedAt') or '', 'worker', get(nodeId .. '.worker') or ''}
end
