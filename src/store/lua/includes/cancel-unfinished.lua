--- @include "state-cache"
--- @include "emit"
--- @include "node-status"

-- Every node that has not finished becomes cancelled (on failure or cancellation of the run). Returns
-- the child runs of the subflow nodes among them, which the caller cancels in turn.
local function cancelUnfinished(topo)
  local fields = {}
  for i, id in ipairs(topo.ids) do fields[i * 2 - 1] = id .. '.status'; fields[i * 2] = id .. '.child' end
  load(unpack(fields))
  local children, cancelled = {}, {}
  for _, id in ipairs(topo.ids) do
    if not isTerminalNode(get(id .. '.status')) then
      set(id .. '.status', 'cancelled')
      set(id .. '.endedAt', now)
      cancelled[#cancelled + 1] = id
      local child = get(id .. '.child')
      if child then children[#children + 1] = child end
    end
  end
  if #cancelled > 0 then emit('nodes.cancelled', nil, {'nodes', table.concat(cancelled, ',')}) end
  return children
end
