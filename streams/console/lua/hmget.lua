-- hmget.lua: HMGET on some buckets' hashes in one call, for the console's counters (read-only;
-- on a cluster, one call per bucket: a call's keys must share a slot).
--
-- KEYS    = one hash per bucket
-- ARGV    = per key: n, then n field names
-- Returns, per key, the n values (false where absent)
local out = {}
local a = 1
for i, key in ipairs(KEYS) do
  local n = tonumber(ARGV[a])
  out[i] = redis.call('HMGET', key, unpack(ARGV, a + 1, a + n))
  a = a + n + 1
end
return out
