-- index_chunk.lua: runs of some buckets' at-risk indexes by rank, highest first, for the
-- console's ranked lists (read-only). One call for many buckets instead of ZCOUNT + ZREVRANGE
-- per bucket, so a page costs a command, not 128 (on a cluster, one call per bucket: a call's
-- keys must share a slot).
--
-- KEYS    = <prefix>:{b}:risk of each bucket
-- ARGV    = how many entries per bucket, then per key: 1, first rank (-1: the first rank below
--           the churned users, index score 1)
-- Returns, per key, {first rank, member, score, member, score, ...}
local count = tonumber(ARGV[1])
local out = {}
for i, key in ipairs(KEYS) do
  local first = tonumber(ARGV[2 * i + 1])
  if first < 0 then
    first = redis.call('ZCOUNT', key, 1, '+inf')
  end
  local got = redis.call('ZREVRANGE', key, first, first + count - 1, 'WITHSCORES')
  table.insert(got, 1, first)
  out[i] = got
end
return out
