-- write_batch.lua: apply one cycle's results to one bucket {b} atomically, fenced by offsets.
-- Effectively-once: the write happens only if cw:{b}:off still holds, for every partition, the
-- offset the read returned (else another worker owns the partition now: "fenced"). A retry of a
-- write whose reply was lost is recognised by its token and not applied twice (stats are deltas).
-- The token is kept per partition ("<topic>:<p>|token"): only the partition's owner writes it, so
-- another worker (or lane) writing the same bucket for other partitions cannot overwrite it.
-- fence_read / fence_retried / fence_check / fence_mark come from fence.lua, loaded in front of this file.
--
-- The bucket's incarnation marker (field "|inc" of the off hash, set when the store is
-- initialised) must be the worker's: if Redis lost its data the marker is gone and nothing is
-- written ({3}): the worker rebuilds instead of writing into an empty store.
--
-- The users' alert lists (the console's "alerts it got", streams/worker/alert_log.py) are written
-- here too, so a list never misses an entry whose state was written: a list is one hash field per
-- user of <tag>:al:<group>, entries newest first joined by "\n"; an alert whose id is already in
-- the list is not added again (a redelivered batch); at most `cap` entries are kept.
--
-- KEYS[1] = <prefix>:{b}:off   KEYS[2] = <prefix>:{b}:stats   KEYS[3] = <prefix>:{b}:risk
-- ARGV    = tag, token, incarnation,
--           parts JSON  [field "<topic>:<p>", expected or "", new or "", token as read or "" or
--                         false (not checked: fence.lua's fence_check), ...] (flat),
--           states JSON [group, user_id, due field "<topic>:<p>", due score (0: not due; -1:
--                         as stored, leave the due index alone), risk score or "" (not at risk)
--                         or "=" (was not at risk either: leave the ranking alone), save-list
--                         index score or "" (not on the list) or "=" (leave it): ZSET
--                         <tag>:r:<group>, ...] (six values a state, flat: a table per state
--                         cost cjson three times as much as the values themselves),
--           stats JSON  [[field, delta, "i" | "f"], ...] or "" (none),
--           alerts JSON [cap, [group, user_id, alert id or "" (delete the list)], ...] or "" (none),
--           unreadable JSON [group, user_id, ...] or "" (none): users whose stored record could not
--                         be read (see below),
--           then one state record per state ("" deletes the user: expired),
--           then one list entry per alert, in the alerts' order (oldest first)
-- Users `churnwatch erase` erased (erased.lua) are written nothing: neither state nor indexes nor
-- alert list. The worker drops their events once its read sees them erased; this catches a cycle
-- that read them before the erase and writes after it (the counters' deltas it carries stay).
--
-- Returns {1} written, {2} already written by this token, {0, field, actual} fenced,
-- {3, marker} the bucket's incarnation is not the worker's (Redis lost its data).
local tag, token = ARGV[1], ARGV[2]
local parts = fence_parts(ARGV[4], 4)
local seen = fence_read(KEYS[1], parts)
local marker = seen[1] or ''
if marker ~= ARGV[3] then
  return { 3, marker }
end
if fence_retried(seen, parts, token) then
  return { 2 }
end
local fenced = fence_check(seen, parts, token)
if fenced then
  return fenced
end

-- Keys by group or due field, each built once a call: a concatenation allocates and interns a
-- string, and turning a number into text costs more than the HSET it names. A group's text is made
-- once a call too, with '%d': `..` turns a number into text with '%.14g', ~1.9k instructions of
-- sprintf a time in valkey 9.1 (callgrind), against ~0.5k; the same text for a group id.
local users_keys, save_keys, due_keys, names = {}, {}, {}, {}
local function name_of(group)
  local name = names[group]
  if not name then
    name = string.format('%d', group)
    names[group] = name
  end
  return name
end

local function count(field, delta, kind)
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

-- A user whose stored record could not be read is started afresh or dropped by its state below;
-- the bucket's counters still count what that record added. The worker takes off `users` and the
-- stage count (stats, from what the record still says); the at-risk and save-list counts are
-- taken here from the user's entries in those two indexes, which the writes of the record kept
-- exactly in step with them (risk score iff at risk, save-list score iff on the list), before
-- the state's own index writes below replace them.
local unreadable = ARGV[8] ~= '' and cjson.decode(ARGV[8]) or {}
for u = 1, #unreadable, 2 do
  local group, user = unreadable[u], unreadable[u + 1]
  if redis.call('ZSCORE', KEYS[3], user) then
    count('at_risk', -1)
  end
  if redis.call('ZSCORE', tag .. ':r:' .. name_of(group), user) then
    count('reachable', -1)
  end
end

-- The due and at-risk entries (one key per due field, one per bucket: ~20 and ~70 states a call
-- at 10k-record cycles) go in one variadic ZADD per key and run of adds, at most ZADD_RUN members
-- a call (unpack's stack): a redis.call costs valkey ~5k instructions beside the command itself
-- (the argument objects, command lookup and ACL, the reply turned into Lua; callgrind). A key's
-- adds are sent before any ZREM of that key, so every key sees its commands in the same order as
-- one by one, a user written twice included. The encodings are the one-by-one's too: a ZADD of
-- more members than `zset-max-listpack-entries` (128 by default) turns a listpack into a skiplist
-- before adding (zsetTypeMaybeConvert), which one by one happens only once the key holds that
-- many; ZADD_RUN is far below it (tests/test_write_runs.py). The records' HSET and the save-list
-- ZADD stay one a user: their keys are per group, ~1.2 users a call, and a run's table cost more
-- than the calls it saved (realistic +10% instructions, callgrind).
local ZADD_RUN = 32
local runs = {}
local function zadd_flush(key)
  local run = runs[key]
  if run and #run > 0 then
    redis.call('ZADD', key, unpack(run))
    runs[key] = nil
  end
end
local function zadd_later(key, score, member)
  local run = runs[key]
  if not run then
    run = {}
    runs[key] = run
  end
  run[#run + 1] = score
  run[#run + 1] = member
  if #run >= 2 * ZADD_RUN then
    zadd_flush(key)
  end
end
local function zrem(key, member)
  zadd_flush(key)
  redis.call('ZREM', key, member)
end

local states = cjson.decode(ARGV[5])
local n_states = #states / 6
local risk_key = KEYS[3]
local is_erased = erased_check(tag)
for s = 1, n_states do
  local i = 6 * s - 5
  local group, user, due_field, due_score, risk, reach = states[i], states[i + 1], states[i + 2], states[i + 3],
                                                         states[i + 4], states[i + 5]
  local blob = ARGV[8 + s]
  if is_erased and is_erased(user, group) then
    blob = nil
  end
  local users_key, save_key, name = users_keys[group], save_keys[group], names[group]
  if not users_key then
    name = name_of(group)
    users_key, save_key = tag .. ':u:' .. name, tag .. ':r:' .. name
    users_keys[group], save_keys[group] = users_key, save_key
  end
  local due_key = due_keys[due_field]
  if not due_key then
    due_key = tag .. ':due:' .. due_field
    due_keys[due_field] = due_key
  end
  if blob == nil then
    -- erased: nothing written
  elseif blob == '' then
    redis.call('HDEL', users_key, user)
    zrem(due_key, name .. ':' .. user)
    zrem(risk_key, user)
    redis.call('ZREM', save_key, user)
  else
    redis.call('HSET', users_key, user, blob)
    if due_score == 0 then
      zrem(due_key, name .. ':' .. user)
    elseif due_score > 0 then
      zadd_later(due_key, due_score, name .. ':' .. user)
    end
    if risk == '' then
      zrem(risk_key, user)
    elseif risk ~= '=' then
      zadd_later(risk_key, risk, user)
    end
    if reach == '' then
      redis.call('ZREM', save_key, user)
    elseif reach ~= '=' then
      redis.call('ZADD', save_key, reach, user)
    end
  end
end
for key in pairs(runs) do
  zadd_flush(key)
end

local stats = ARGV[6] ~= '' and cjson.decode(ARGV[6]) or {}
for s = 1, #stats do
  count(stats[s][1], stats[s][2], stats[s][3])
end

-- A list with `entry` first, then the first cap - 1 entries of `old` (entries are compact JSON, one
-- a line, none empty). Cut once after its (cap - 1)th newline: splitting `old` into a Lua string
-- per line and joining them again cost ~1k instructions a line kept. A list with an empty line
-- (none is written: it would take a hand edit) is still split, which leaves the empty lines out.
local function list_with(entry, old, cap)
  if old == '' then
    return entry
  end
  if string.find(old, '\n\n', 1, true) or string.byte(old, 1) == 10 or string.byte(old, -1) == 10 then
    local out = { entry }
    for line in string.gmatch(old, '[^\n]+') do
      if #out >= cap then
        break
      end
      out[#out + 1] = line
    end
    return table.concat(out, '\n')
  end
  if cap <= 1 then
    return entry
  end
  local cut = 0
  for _ = 1, cap - 1 do
    cut = string.find(old, '\n', cut + 1, true)
    if not cut then
      return entry .. '\n' .. old
    end
  end
  return entry .. '\n' .. string.sub(old, 1, cut - 1)
end

local alerts = ARGV[7] ~= '' and cjson.decode(ARGV[7]) or {}
local cap, at = alerts[1], 8 + n_states
for a = 2, #alerts do
  local key, user, id = tag .. ':al:' .. name_of(alerts[a][1]), alerts[a][2], alerts[a][3]
  if is_erased and is_erased(user, alerts[a][1]) then
    -- erased: no alert list
  elseif id == '' then
    redis.call('HDEL', key, user)
  else
    local old = redis.call('HGET', key, user) or ''
    if not string.find(old, '["' .. id .. '"', 1, true) then
      redis.call('HSET', key, user, list_with(ARGV[at + a - 1], old, cap))
    end
  end
end

fence_mark(KEYS[1], parts, token)
return { 1 }
