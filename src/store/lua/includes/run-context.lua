--[[
The fixed head of every run script: the run's four keys and the first four ARGV entries, named.

  KEYS[1] state hash   KEYS[2] context hash   KEYS[3] outputs hash   KEYS[4] events stream
  and one key derived from them, of the same hash tag (so the same slot, on a cluster too): the fan hash
  `<prefix>:{<runId>}:fan`, a map's per-child inputs and values (includes/fan-out.lua)
  ARGV[1] runId  ARGV[2] now (epoch ms)  ARGV[3] run-ended channel  ARGV[4] abort channel

(src/store/keys.ts builds the keys in this order; src/store/script-args.ts builds the ARGV.)

The state hash holds the run's own fields (status, blueprintId, version, topo, remaining, createdAt,
endedAt, ttl, parent, pins, error, cancelReason, deadline, redrives) and every node's fields as `<nodeId>.<field>`
(node ids never contain "."): status, arrived, taken, attempts, error, startedAt, endedAt, worker,
readied, meta, child, childIndex and children (a node waiting for indexed children one after another: a
loop), for a parked node (waiting/sleeping) since, wake, prompt, actions, wakeAction, and the fan* fields
of a fanning-out node (includes/fan-out.lua). A node without a status is pending. A field Redis does not
have reads as false (Lua's form of a nil reply).
src/store/run-state.ts is the one reader of these fields outside the scripts.
]]
-- Every script names all of them, whether or not it uses each one.
local stateKey, ctxKey, outKey, eventsKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4] -- luacheck: no unused
local runId, now, endedChannel, abortChannel = ARGV[1], ARGV[2], ARGV[3], ARGV[4] -- luacheck: no unused
-- Derived rather than passed: the fan-out scripts use it, and every script that ends a run expires it.
local fanKey = string.sub(stateKey, 1, -6) .. 'fan' -- luacheck: no unused
