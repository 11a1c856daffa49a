--- @include "state-cache"

-- The parent link of a child run (JSON {runId, nodeId, version}) or ''.
local function parentOf()
  return get('parent') or ''
end
