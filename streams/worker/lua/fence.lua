-- fence.lua: the offset fence and retry token of the fenced write scripts (write_batch.lua,
-- write_accounts.lua). Lua scripts cannot import, so the store puts this text in front of each
-- of them when it loads them (streams/worker/store.py, _script_source): one source, two scripts.
--
-- parts = {{field, expected as read or "", new offset or ""}, ...}; a field is "<topic>:<p>" (or
-- "acct|<topic>:<p>") of the off hash <prefix>:{b}:off, and "<field>|token" holds the token of
-- the partition's last write to the bucket (per partition: only p's owner ever writes it).

-- True when every part already carries `token`: a retry of a write whose reply was lost, which
-- must not be applied twice (stats and counters are deltas).
local function fence_retried(off_key, parts, token)
  if #parts == 0 then
    return false
  end
  for p = 1, #parts do
    if redis.call('HGET', off_key, parts[p][1] .. '|token') ~= token then
      return false
    end
  end
  return true
end

-- {0, field, actual} for the first part whose offset is not what the read returned (another
-- worker owns that partition now), or nil when the write may go ahead.
local function fence_check(off_key, parts)
  for p = 1, #parts do
    local actual = redis.call('HGET', off_key, parts[p][1]) or ''
    if actual ~= parts[p][2] then
      return { 0, parts[p][1], actual }
    end
  end
  return nil
end

-- After the write: each part's new offset (where it moves) and this write's token.
local function fence_mark(off_key, parts, token)
  for p = 1, #parts do
    if parts[p][3] ~= '' then
      redis.call('HSET', off_key, parts[p][1], parts[p][3])
    end
    redis.call('HSET', off_key, parts[p][1] .. '|token', token)
  end
end
