-- load_users.lua: the state records and/or score histories of some users, for the console
-- (read-only). One call for a whole page instead of an HGET per user and record (on a
-- cluster, one call per bucket: a call's keys must share a slot).
--
-- KEYS    = <prefix>:{b} of each bucket (names the slot; the script builds the bucket's keys)
-- ARGV[1] = which records, per user in order: 'u' (state), 'hist' (score history), 'al' (alert list), space-separated
-- ARGV    = then per key: 2n, then n pairs group, user_id
-- Returns, per key, the records of its users in that order (false where absent)
local kinds = {}
for kind in string.gmatch(ARGV[1], '%S+') do
  kinds[#kinds + 1] = ':' .. kind .. ':'
end
local out = {}
local a = 2
for i, tag in ipairs(KEYS) do
  local last = a + tonumber(ARGV[a])
  local got = {}
  for j = a + 1, last, 2 do
    local group, user = ARGV[j], ARGV[j + 1]
    for _, kind in ipairs(kinds) do
      got[#got + 1] = redis.call('HGET', tag .. kind .. group, user)
    end
  end
  out[i] = got
  a = last + 1
end
return out
