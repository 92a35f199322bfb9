-- write_batch.lua: apply one cycle's results to one bucket {b} atomically, fenced by offsets.
-- Effectively-once: the write happens only if cw:{b}:off still holds, for every partition, the
-- offset the read returned (else another worker owns the partition now: "fenced"). A retry of a
-- write whose reply was lost is recognised by its token and not applied twice (stats are deltas).
-- The token is kept per partition ("<topic>:<p>|token"): only the partition's owner writes it, so
-- another worker (or lane) writing the same bucket for other partitions cannot overwrite it.
-- fence_retried / fence_check / fence_mark come from fence.lua, loaded in front of this file.
--
-- The bucket's incarnation marker (field "|inc" of the off hash, set when the store is
-- initialised) must be the worker's: if Redis lost its data the marker is gone and nothing is
-- written ({3}): the worker rebuilds instead of writing into an empty store.
--
-- KEYS[1] = <prefix>:{b}:off   KEYS[2] = <prefix>:{b}:stats   KEYS[3] = <prefix>:{b}:risk
-- ARGV    = tag, token, incarnation,
--           parts JSON  [[field "<topic>:<p>", expected or "", new or ""], ...],
--           states JSON [[group, user_id, due field "<topic>:<p>", due score (0: not due; -1: as
--                         stored, leave the due index alone), risk score or "" (not at risk) or
--                         "=" (was not at risk either: leave the ranking alone), save-list index
--                         score or "" (not on the list) or "=" (leave it): ZSET <tag>:r:<group>], ...],
--           stats JSON  [[field, delta, "i" | "f"], ...],
--           then one state record per state ("" deletes the user: expired)
-- Returns {1} written, {2} already written by this token, {0, field, actual} fenced,
-- {3, marker} the bucket's incarnation is not the worker's (Redis lost its data).
local tag, token = ARGV[1], ARGV[2]
local marker = redis.call('HGET', KEYS[1], '|inc') or ''
if marker ~= ARGV[3] then
  return { 3, marker }
end
local parts = cjson.decode(ARGV[4])
if fence_retried(KEYS[1], parts, token) then
  return { 2 }
end
local fenced = fence_check(KEYS[1], parts)
if fenced then
  return fenced
end
local states = cjson.decode(ARGV[5])
for s = 1, #states do
  local st = states[s]
  local group, user, due_field, due_score, risk, reach = st[1], st[2], st[3], st[4], st[5], st[6]
  local blob = ARGV[6 + s]
  local member = group .. ':' .. user
  local due_key = tag .. ':due:' .. due_field
  if blob == '' then
    redis.call('HDEL', tag .. ':u:' .. group, user)
    redis.call('ZREM', due_key, member)
    redis.call('ZREM', KEYS[3], user)
    redis.call('ZREM', tag .. ':r:' .. group, user)
  else
    redis.call('HSET', tag .. ':u:' .. group, user, blob)
    if due_score == 0 then
      redis.call('ZREM', due_key, member)
    elseif due_score > 0 then
      redis.call('ZADD', due_key, due_score, member)
    end
    if risk == '' then
      redis.call('ZREM', KEYS[3], user)
    elseif risk ~= '=' then
      redis.call('ZADD', KEYS[3], risk, user)
    end
    if reach == '' then
      redis.call('ZREM', tag .. ':r:' .. group, user)
    elseif reach ~= '=' then
      redis.call('ZADD', tag .. ':r:' .. group, reach, user)
    end
  end
end
local stats = cjson.decode(ARGV[6])
for s = 1, #stats do
  local field, delta, kind = stats[s][1], stats[s][2], stats[s][3]
  local now
  if kind == 'f' then
    now = tonumber(redis.call('HINCRBYFLOAT', KEYS[2], field, delta))
  else
    now = redis.call('HINCRBY', KEYS[2], field, delta)
  end
  if now == 0 then  -- counters back at zero take no room (stage counts come and go)
    redis.call('HDEL', KEYS[2], field)
  end
end
fence_mark(KEYS[1], parts, token)
return { 1 }
