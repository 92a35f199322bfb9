-- read_batch.lua: everything one worker cycle needs from one bucket {b}, in one call.
-- Why one script per bucket: one pipelined round trip for the whole batch, and every key it
-- touches shares the hash tag {b} (one Redis Cluster slot). Lists travel as one JSON argument
-- each: a few big arguments cost the client far less to pack than thousands of small ones.
--
-- KEYS[1] = <prefix>:{b}:off
-- ARGV    = tag ("<prefix>:{b}"), due_limit,
--           parts JSON [field "<topic>:<p>", due_max_s or "", ...], users JSON [group, user_id, ...]
--           (flat arrays: cjson builds nested ones several times slower),
--           optionally skip JSON [part, member, ...]: due entries not to return (part: 1-based in
--           parts), the worker's writes in flight having moved or removed them
--           (streams/worker/pending.py, moved_dues)
-- Returns { offsets[n_parts] (string or false), blobs[n_users] (bytes or false),
--           dues[n_parts] = { member, score, blob-or-false, ... } (members "<g>:<user_id>"),
--           nexts[n_parts] = the lowest due score above due_max, or false (none, or not swept);
--           0 when the index held due_limit entries up to due_max or more (sweep again: the
--           entries skipped count, so the worker cannot tell a cut read by its length),
--           the bucket's incarnation marker (field "|inc" of the off hash) or false,
--           tokens[n_parts] = each partition's last write token "<worker>:<cycle>" (or false),
--           which the write expects (fence.lua's fence_check),
--           erased = the positions (1-based, in users) of the users `churnwatch erase` erased
--           (erased.lua; empty while nothing was ever erased: one HGET a bucket) }
-- The marker is checked by the worker every cycle: gone or different means Redis lost its data.
-- The next score lets the worker skip this bucket's due index until something in it is due.
local tag = ARGV[1]
local due_limit = tonumber(ARGV[2])
local flat = cjson.decode(ARGV[3])
local parts = {}
for i = 1, #flat, 2 do
  parts[#parts + 1] = { flat[i], flat[i + 1] }
end
local users = cjson.decode(ARGV[4])
local skip = {}
if ARGV[5] then
  local flat_skip = cjson.decode(ARGV[5])
  for i = 1, #flat_skip, 2 do
    skip[flat_skip[i + 1]] = flat_skip[i]
  end
end
-- One HMGET for the marker and every offset and token (a HGET each cost a call per partition and
-- bucket): fence.lua's fence_read, in chunks for any partition count.
local seen = fence_read(KEYS[1], parts)
local offsets, tokens, dues, nexts = {}, {}, {}, {}
for p = 1, #parts do
  local field, due_max = parts[p][1], parts[p][2]
  offsets[p] = seen[2 * p]
  tokens[p] = seen[2 * p + 1]
  local found = {}
  nexts[p] = false
  if due_max ~= '' then
    local due_key = tag .. ':due:' .. field
    local members = redis.call('ZRANGEBYSCORE', due_key, '-inf', due_max, 'WITHSCORES', 'LIMIT', 0, due_limit)
    if #members >= 2 * due_limit then
      nexts[p] = 0
    else
      local after = redis.call('ZRANGEBYSCORE', due_key, '(' .. due_max, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
      if #after > 0 then
        nexts[p] = after[2]
      end
    end
    for m = 1, #members, 2 do
      local member = members[m]
      if skip[member] ~= p then
        local sep = string.find(member, ':', 1, true)
        found[#found + 1] = member
        found[#found + 1] = members[m + 1]
        found[#found + 1] = redis.call('HGET', tag .. ':u:' .. string.sub(member, 1, sep - 1), string.sub(member, sep + 1))
      end
    end
  end
  dues[p] = found
end
-- Users' keys by group, each built once a call (turning a number into text costs about as much
-- as the HGET; '%d' ~0.5k instructions of valkey's sprintf against ~1.9k for `..`'s '%.14g').
local blobs, users_keys = {}, {}
for u = 1, #users, 2 do
  local group = users[u]
  local key = users_keys[group]
  if not key then
    key = tag .. ':u:' .. string.format('%d', group)
    users_keys[group] = key
  end
  blobs[#blobs + 1] = redis.call('HGET', key, users[u + 1])
end
-- Erased users (their events are dropped by the worker, counted): looked up only once anyone was.
local erased, is_erased = {}, erased_check(tag)
if is_erased then
  for u = 2, #users, 2 do
    if is_erased(users[u], users[u - 1]) then
      erased[#erased + 1] = u / 2
    end
  end
end
return { offsets, blobs, dues, nexts, seen[1], tokens, erased }
