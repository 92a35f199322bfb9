-- alert_log.lua: put the alerts a cycle emitted first in their users' capped lists (the console's
-- "alerts it got", streams/worker/alert_log.py), for one bucket {b}, only if this cycle's state
-- write applied to the bucket (its token is stored). An alert whose id is already in the list is
-- not added again (a redelivered batch, a retried pipeline); at most `cap` entries are kept.
--
-- KEYS[1] = <prefix>:{b}:off
-- ARGV    = tag, token, offset field "<topic>:<p>" of the write, cap (entries),
--           then (user_id, alert id, entry) triples, oldest first; an empty id deletes the list.
local tag, token, part, cap = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
if redis.call('HGET', KEYS[1], part .. '|token') ~= token then
  return 0
end
local n = 0
for i = 5, #ARGV, 3 do
  local key = tag .. ':al:' .. ARGV[i]
  local id, entry = ARGV[i + 1], ARGV[i + 2]
  if id == '' then
    redis.call('DEL', key)
  else
    local head, seen = '["' .. id .. '"', false
    for _, old in ipairs(redis.call('LRANGE', key, 0, -1)) do
      if string.sub(old, 1, #head) == head then
        seen = true
        break
      end
    end
    if not seen then
      redis.call('LPUSH', key, entry)
      redis.call('LTRIM', key, 0, cap - 1)
      n = n + 1
    end
  end
end
return n
