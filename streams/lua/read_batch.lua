-- read_batch.lua: everything one worker cycle needs from one bucket {b}, in one call.
-- Why one script per bucket: one pipelined round trip for the whole batch, and every key it
-- touches shares the hash tag {b} (one Redis Cluster slot).
--
-- KEYS[1] = <prefix>:{b}:off
-- ARGV    = tag ("<prefix>:{b}"), due_limit, n_parts, n_parts x (field "<topic>:<p>", due_max_s or ""),
--           n_users, n_users x (group, user_id)
-- Returns { offsets[n_parts] (string or false), blobs[n_users] (bytes or false),
--           dues[n_parts] = { member, score, blob-or-false, ... } (members "<g>:<user_id>") }
local tag = ARGV[1]
local due_limit = tonumber(ARGV[2])
local n_parts = tonumber(ARGV[3])
local i = 4
local offsets, dues = {}, {}
for p = 1, n_parts do
  local field, due_max = ARGV[i], ARGV[i + 1]
  i = i + 2
  offsets[p] = redis.call('HGET', KEYS[1], field)
  local found = {}
  if due_max ~= '' then
    local members = redis.call('ZRANGEBYSCORE', tag .. ':due:' .. field, '-inf', due_max,
                               'WITHSCORES', 'LIMIT', 0, due_limit)
    for m = 1, #members, 2 do
      local member = members[m]
      local sep = string.find(member, ':', 1, true)
      local blob = redis.call('HGET', tag .. ':u:' .. string.sub(member, 1, sep - 1), string.sub(member, sep + 1))
      found[#found + 1] = member
      found[#found + 1] = members[m + 1]
      found[#found + 1] = blob
    end
  end
  dues[p] = found
end
local n_users = tonumber(ARGV[i])
i = i + 1
local blobs = {}
for u = 1, n_users do
  blobs[u] = redis.call('HGET', tag .. ':u:' .. ARGV[i], ARGV[i + 1])
  i = i + 2
end
return { offsets, blobs, dues }
