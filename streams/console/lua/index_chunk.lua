-- index_chunk.lua: runs of some buckets' at-risk indexes by rank, highest first, for the
-- console's ranked lists (read-only). One call for many buckets instead of ZCOUNT + ZREVRANGE
-- per bucket, so a page costs a command, not 128 (on a cluster, one call per bucket: a call's
-- keys must share a slot).
--
-- KEYS    = <prefix>:{b}:risk of each bucket
-- ARGV    = how many entries per bucket, then per key: 1, first rank (-1: the first rank below
--           the lapsed users, index score 1: the save list's part)
-- Returns, per key, {first rank, member, score, member, score, ...}
-- The first rank below the lapsed users is the rank of the first entry below score 1 (one
-- descent of the skiplist for the range and one for the rank; ZCOUNT takes four): on a box whose
-- caches other processes keep cold, each descent is a chain of cache misses.
local count = tonumber(ARGV[1])
local out = {}
for i, key in ipairs(KEYS) do
  local first = tonumber(ARGV[2 * i + 1])
  local got
  if first < 0 then
    got = redis.call('ZREVRANGEBYSCORE', key, '(1', '-inf', 'WITHSCORES', 'LIMIT', 0, count)
    first = got[1] and redis.call('ZREVRANK', key, got[1]) or redis.call('ZCARD', key)
  else
    got = redis.call('ZREVRANGE', key, first, first + count - 1, 'WITHSCORES')
  end
  table.insert(got, 1, first)
  out[i] = got
end
return out
