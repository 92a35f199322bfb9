-- load_users.lua: the state records and score histories of some users of one bucket {b}, for
-- the console (read-only). One call per bucket instead of two HGETs per user: a page of 250
-- users costs a few dozen calls in one pipeline.
--
-- KEYS[1] = <prefix>:{b}   (names the slot; the script builds the bucket's keys from it)
-- ARGV    = group, user_id, group, user_id, ...
-- Returns state, history, state, history, ... (false where absent)
local tag = KEYS[1]
local out = {}
for i = 1, #ARGV, 2 do
  local group, user = ARGV[i], ARGV[i + 1]
  out[#out + 1] = redis.call('HGET', tag .. ':u:' .. group, user)
  out[#out + 1] = redis.call('HGET', tag .. ':hist:' .. group, user)
end
return out
