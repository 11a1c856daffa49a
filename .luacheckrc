-- luacheck configuration for the run scripts (src/store/lua). Redis runs scripts on Lua 5.1 with these
-- globals. The scripts are linted as Redis runs them, includes inlined (see .ci/run): an include alone
-- uses functions and locals that another include defines.
std = 'lua51'
read_globals = { 'redis', 'cjson', 'cmsgpack', 'bit', 'KEYS', 'ARGV' }
max_line_length = false
