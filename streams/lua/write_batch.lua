-- write_batch.lua: apply one cycle's results to one bucket {b} atomically, fenced by offsets.
-- Effectively-once: the write happens only if cw:{b}:off still holds, for every partition, the
-- offset the read returned (else another worker owns the partition now: "fenced"). A retry of a
-- write whose reply was lost is recognised by its token and not applied twice (stats are deltas).
--
-- KEYS[1] = <prefix>:{b}:off   KEYS[2] = <prefix>:{b}:stats   KEYS[3] = <prefix>:{b}:risk
-- ARGV    = tag, token, n_parts, n_parts x (field "<topic>:<p>", expected or "", new or ""),
--           n_states, n_states x (group, user_id, blob or "" to delete, due field "<topic>:<p>",
--                                 due score ("0": not due), risk score or "" (not at risk)),
--           n_stats, n_stats x (field, delta, "i" | "f")
-- Returns {1} written, {2} already written by this token, {0, field, actual} fenced.
local tag, token = ARGV[1], ARGV[2]
if redis.call('HGET', KEYS[1], ':token') == token then
  return { 2 }
end
local n_parts = tonumber(ARGV[3])
local i = 4
for p = 1, n_parts do
  local actual = redis.call('HGET', KEYS[1], ARGV[i]) or ''
  if actual ~= ARGV[i + 1] then
    return { 0, ARGV[i], actual }
  end
  i = i + 3
end
i = 4
for p = 1, n_parts do
  if ARGV[i + 2] ~= '' then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
  end
  i = i + 3
end
local n_states = tonumber(ARGV[i])
i = i + 1
for s = 1, n_states do
  local group, user, blob, due_field, due_score, risk =
    ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
  i = i + 6
  local member = group .. ':' .. user
  local due_key = tag .. ':due:' .. due_field
  if blob == '' then
    redis.call('HDEL', tag .. ':u:' .. group, user)
    redis.call('ZREM', due_key, member)
    redis.call('ZREM', KEYS[3], user)
  else
    redis.call('HSET', tag .. ':u:' .. group, user, blob)
    if due_score == '0' then
      redis.call('ZREM', due_key, member)
    else
      redis.call('ZADD', due_key, due_score, member)
    end
    if risk == '' then
      redis.call('ZREM', KEYS[3], user)
    else
      redis.call('ZADD', KEYS[3], risk, user)
    end
  end
end
local n_stats = tonumber(ARGV[i])
i = i + 1
for s = 1, n_stats do
  local now
  if ARGV[i + 2] == 'f' then
    now = tonumber(redis.call('HINCRBYFLOAT', KEYS[2], ARGV[i], ARGV[i + 1]))
  else
    now = redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1])
  end
  if now == 0 then  -- counters back at zero take no room (stage counts come and go)
    redis.call('HDEL', KEYS[2], ARGV[i])
  end
  i = i + 3
end
redis.call('HSET', KEYS[1], ':token', token)
return { 1 }
