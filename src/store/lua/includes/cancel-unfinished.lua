--- @include "state-cache"
--- @include "emit"
--- @include "node-status"

-- Every node that has not finished becomes cancelled (on failure or cancellation of the run). Returns
-- the child runs of the subflow and loop nodes among them, and every child a map node has in flight
-- (the failed node's too), which the caller cancels in turn.
local function cancelUnfinished(topo)
  local fields = {}
  for _, id in ipairs(topo.ids) do
    for _, name in ipairs({'.status', '.child', '.fanBase', '.fanRunning'}) do fields[#fields + 1] = id .. name end
  end
  load(unpack(fields))
  local children, cancelled = {}, {}
  for _, id in ipairs(topo.ids) do
    local base = get(id .. '.fanBase')
    if base then
      for index in string.gmatch(get(id .. '.fanRunning') or '', '[^,]+') do children[#children + 1] = base .. '-' .. index end
    end
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
