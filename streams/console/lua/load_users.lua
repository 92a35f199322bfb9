-- load_users.lua: the state records and score histories of some users, for the console
-- (read-only). One call for a whole page instead of two HGETs per user (on a cluster, one call
-- per bucket: a call's keys must share a slot).
--
-- KEYS    = <prefix>:{b} of each bucket (names the slot; the script builds the bucket's keys)
-- ARGV    = per key: 2n, then n pairs group, user_id
-- Returns, per key, {state, history, state, history, ...} (false where absent)
local out = {}
local a = 1
for i, tag in ipairs(KEYS) do
  local last = a + tonumber(ARGV[a])
  local got = {}
  for j = a + 1, last, 2 do
    local group, user = ARGV[j], ARGV[j + 1]
    got[#got + 1] = redis.call('HGET', tag .. ':u:' .. group, user)
    got[#got + 1] = redis.call('HGET', tag .. ':hist:' .. group, user)
  end
  out[i] = got
  a = last + 1
end
return out
