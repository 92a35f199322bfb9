-- history.lua: record weekly score points for the console (streams/worker/history.py), for one
-- bucket {b}, only if this cycle's state write applied to the bucket (its token is stored).
-- Points stay sorted by week; a point for a week already recorded replaces it (a redelivered
-- batch writes the same points again); at most `cap` points are kept, the oldest dropped.
--
-- KEYS[1] = <prefix>:{b}:off
-- ARGV    = tag, token, offset field "<topic>:<p>" of the write, cap (points),
--           then (group, user_id, point) triples; an empty point deletes the user's history.
-- Nothing is written for a user `churnwatch erase` erased (erased.lua, loaded in front of this file).
local tag, token, part, cap = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
if redis.call('HGET', KEYS[1], part .. '|token') ~= token then
  return 0
end
local function week(p, j)
  return string.byte(p, j) * 256 + string.byte(p, j + 1)
end
local n = 0
local is_erased = erased_check(tag)
for i = 5, #ARGV, 3 do
  local key = tag .. ':hist:' .. ARGV[i]
  local user, point = ARGV[i + 1], ARGV[i + 2]
  if is_erased and is_erased(user, ARGV[i]) then
    -- erased: no history
  elseif point == '' then
    redis.call('HDEL', key, user)
  else
    local old = redis.call('HGET', key, user) or ''
    local w = week(point, 1)
    local out, placed = {}, false
    for j = 1, #old - 4, 5 do
      local ow = week(old, j)
      if not placed and w <= ow then
        out[#out + 1] = point
        placed = true
      end
      if ow ~= w then
        out[#out + 1] = string.sub(old, j, j + 4)
      end
    end
    if not placed then
      out[#out + 1] = point
    end
    local value = table.concat(out)
    if #value > 5 * cap then
      value = string.sub(value, -5 * cap)
    end
    redis.call('HSET', key, user, value)
    n = n + 1
  end
end
return n
