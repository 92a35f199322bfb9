-- alert_log.lua: put the alerts a cycle emitted first in their users' capped lists (the console's
-- "alerts it got", streams/worker/alert_log.py), for one bucket {b}, only if this cycle's state
-- write applied to the bucket (its token is stored). A list is one hash field per user, entries
-- newest first joined by "\n"; an alert whose id is already in the list is not added again (a
-- redelivered batch, a retried pipeline); at most `cap` entries are kept.
--
-- KEYS[1] = <prefix>:{b}:off
-- ARGV    = tag, token, offset field "<topic>:<p>" of the write, cap (entries),
--           then (group, user_id, alert id, entry) quadruples, oldest first; an empty id deletes the list.
local tag, token, part, cap = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
if redis.call('HGET', KEYS[1], part .. '|token') ~= token then
  return 0
end
local n = 0
for i = 5, #ARGV, 4 do
  local key, user, id = tag .. ':al:' .. ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if id == '' then
    redis.call('HDEL', key, user)
  else
    local old = redis.call('HGET', key, user) or ''
    if not string.find(old, '["' .. id .. '"', 1, true) then
      local out = { ARGV[i + 3] }
      for line in string.gmatch(old, '[^\n]+') do
        if #out >= cap then
          break
        end
        out[#out + 1] = line
      end
      redis.call('HSET', key, user, table.concat(out, '\n'))
      n = n + 1
    end
  end
end
return n
