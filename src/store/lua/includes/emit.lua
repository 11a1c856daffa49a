-- Appends an event to the run's capped stream: type, at, node (when given), then `extra` as field, value, ...
-- (src/store/run-events.ts types every event the scripts emit.)
--- @include "run-context"

local function emit(kind, nodeId, extra)
  local fields = {'type', kind, 'at', now}
  if nodeId then fields[#fields + 1] = 'node'; fields[#fields + 1] = nodeId end
  if extra then for i = 1, #extra do fields[#fields + 1] = extra[i] end end
  redis.call('XADD', eventsKey, 'MAXLEN', '~', 1000, '*', unpack(fields))
end
