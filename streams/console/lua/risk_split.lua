-- risk_split.lua: the at-risk index's entries per bucket split into reachable and lapsed users,
-- for the console's headline figures (read-only; on a cluster, one call per bucket: a call's
-- keys must share a slot).
--
-- KEYS    = <prefix>:{b}:risk of each bucket
-- ARGV    = per key: 0 (no argument)
-- Returns, per key, {entries, lapsed entries}: ZCARD (O(1)) and ZCOUNT of the scores at or above
-- 1 (models.ranking.index_score: lapsed users, dormant or churned at their last review; O(log n))
local out = {}
for i, key in ipairs(KEYS) do
  out[i] = {redis.call('ZCARD', key), redis.call('ZCOUNT', key, '1', '+inf')}
end
return out
