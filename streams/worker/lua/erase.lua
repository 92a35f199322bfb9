-- erase.lua: `churnwatch erase` in one bucket {b}, atomically (streams/worker/erase.py): every
-- erased user is recorded in the bucket's erased set, and what the bucket holds of them is deleted.
-- Run in every bucket: each one records every erased user (erased.lua: the account side writes any
-- user's member record into the account's bucket) and deletes their membership entries there
-- (<tag>:mof:<g> and the member record it points to); the user's own bucket also records the user's
-- group in "|groups", and deletes the state, its indexes, alert list, score history and the user's
-- own account (a user without account_id is one).
-- Atomic with the worker's scripts: a cycle that read the user before this ran writes nothing of
-- them after it (write_batch.lua, history.lua and write_accounts.lua consult the erased set).
--
-- KEYS[1] = <tag>:erased  KEYS[2] = <tag>:off  KEYS[3] = <tag>:stats  KEYS[4] = <tag>:risk
-- KEYS[5] = <tag>:acct    KEYS[6] = <tag>:ax   KEYS[7] = <tag>:aside
-- ARGV    = tag, salt (used only if the bucket has none yet), UTC day "yyyymmdd",
--           stats JSON [[field, delta], ...] (users and stage counts of the bucket's own users, from
--           their records as read: applied only if every record is still that one),
--           users JSON [[user id, group, member key, own 0/1, id too long for a member record 0/1], ...],
--           rewrites JSON [[key index 6 or 7, or key name after the tag (":m:<account>"), field], ...]:
--           company accounts' values that hold a user's id (the alert log in the extras, the alert
--           side's held copies, member records the membership index does not name; erase.py _scrubbed),
--           then one record as read per user ("" none; ignored when not own),
--           then per rewrite the value as read and the value to write ("" delete): written only if
--           the value is still the one read
-- Returns {0} a record changed since it was read (nothing done: read again and retry), or
-- {1, fields and keys deleted}.
local tag = ARGV[1]
local users = cjson.decode(ARGV[5])
local rewrites = cjson.decode(ARGV[6])
for i = 1, #users do
  local u = users[i]
  if u[4] == 1 and (redis.call('HGET', tag .. ':u:' .. u[2], u[1]) or '') ~= ARGV[6 + i] then
    return { 0 }
  end
end
local at = 6 + #users
local function rewritten(r)
  local k = rewrites[r][1]
  return type(k) == 'number' and KEYS[k] or tag .. k
end
for r = 1, #rewrites do
  if (redis.call('HGET', rewritten(r), rewrites[r][2]) or '') ~= ARGV[at + 2 * r - 1] then
    return { 0 }
  end
end
redis.call('HSETNX', KEYS[1], '|salt', ARGV[2])
local salt = redis.call('HGET', KEYS[1], '|salt')
local groups = redis.call('HGET', KEYS[1], '|groups') or ','
local n = 0
local function gone(reply)
  n = n + reply
end
local function count(field, delta)
  if redis.call('HINCRBY', KEYS[3], field, delta) == 0 then
    redis.call('HDEL', KEYS[3], field)
  end
end
local stats = cjson.decode(ARGV[4])
for s = 1, #stats do
  count(stats[s][1], stats[s][2])
end
local parts = {}  -- "<topic>:<p>" of every partition applied here: its due index
for _, field in ipairs(redis.call('HKEYS', KEYS[2])) do
  if not string.find(field, '|', 1, true) then
    parts[#parts + 1] = field
  end
end
for i = 1, #users do
  local user, group, mkey, own = users[i][1], users[i][2], users[i][3], users[i][4]
  redis.call('HSET', KEYS[1], redis.sha1hex(salt .. user), ARGV[3])
  if users[i][5] == 1 then  -- its member records keep no id: write_accounts.lua tells them by member key
    redis.call('HSET', KEYS[1], redis.sha1hex(salt .. '|m' .. mkey), ARGV[3])
  end
  local mof = tag .. ':mof:' .. group
  local account = redis.call('HGET', mof, user)
  if account then
    gone(redis.call('HDEL', mof, user))
    gone(redis.call('HDEL', tag .. ':m:' .. account, mkey))
  end
  if own == 1 then
    if not string.find(groups, ',' .. group .. ',', 1, true) then  -- erased.lua answers other groups at once
      groups = groups .. group .. ','
      redis.call('HSET', KEYS[1], '|groups', groups)
    end
    -- the at-risk and save-list counts follow the user's entries in those indexes (write_batch.lua)
    if redis.call('ZSCORE', KEYS[4], user) then
      count('at_risk', -1)
    end
    if redis.call('ZSCORE', tag .. ':r:' .. group, user) then
      count('reachable', -1)
    end
    gone(redis.call('HDEL', tag .. ':u:' .. group, user))
    gone(redis.call('ZREM', tag .. ':r:' .. group, user))
    gone(redis.call('ZREM', KEYS[4], user))
    for p = 1, #parts do
      gone(redis.call('ZREM', tag .. ':due:' .. parts[p], group .. ':' .. user))
    end
    gone(redis.call('HDEL', tag .. ':al:' .. group, user))
    gone(redis.call('HDEL', tag .. ':hist:' .. group, user))
    gone(redis.call('HDEL', KEYS[5], user))
    gone(redis.call('HDEL', KEYS[6], user))
    gone(redis.call('HDEL', KEYS[7], user, user .. '|held'))
    gone(redis.call('DEL', tag .. ':m:' .. user))
  end
end
for r = 1, #rewrites do
  local key, field, value = rewritten(r), rewrites[r][2], ARGV[at + 2 * r]
  if value == '' then
    redis.call('HDEL', key, field)
  else
    redis.call('HSET', key, field, value)
  end
  n = n + 1
end
return { 1, n }
