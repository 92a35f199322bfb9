-- fence.lua: the offset fence and retry token of the fenced write scripts (write_batch.lua,
-- write_accounts.lua), and the chunked HMGET/HSET (fence_call) the read scripts (read_batch.lua,
-- read_accounts.lua) read offsets and tokens with.
-- Lua scripts cannot import, so the store puts this text in front of each of them when it loads
-- them (streams/worker/store.py, _script_source): one source, four scripts.
--
-- parts = {{field, expected as read or "", new offset or "" [, token as read]}, ...} (fence_parts: they travel as
-- one flat JSON array, three or four values a part); a field is "<topic>:<p>" (or
-- "acct|<topic>:<p>") of the off hash <prefix>:{b}:off, and "<field>|token" holds the token of
-- the partition's last write to the bucket (per partition: only p's owner ever writes it).
-- Why one HMGET and one HSET: a bucket written for 8 partitions cost 32 calls a cycle with a
-- HGET or HSET per field, about as much Redis time as the states of a small cycle themselves.

-- Fields per HMGET/HSET: keeps unpack() far below Lua's C stack limit (8,000) for any partition count.
local FENCE_CHUNK = 1000

local function fence_call(cmd, key, args)
  if #args <= FENCE_CHUNK then
    return redis.call(cmd, key, unpack(args))
  end
  local out = {}
  for i = 1, #args, FENCE_CHUNK do
    local reply = redis.call(cmd, key, unpack(args, i, math.min(i + FENCE_CHUNK - 1, #args)))
    if type(reply) == 'table' then
      for j = 1, #reply do
        out[#out + 1] = reply[j]
      end
    end
  end
  return out
end

-- The parts from their flat JSON array [field, expected, new, ...] (cjson builds a nested array
-- several times slower than Lua builds the same tables). `width` 4 (the write scripts): each part
-- also carries the partition's token as the read found it ("" none; false: not checked).
local function fence_parts(json, width)
  local flat, parts, w = cjson.decode(json), {}, width or 3
  for i = 1, #flat, w do
    parts[#parts + 1] = { flat[i], flat[i + 1], flat[i + 2], w == 4 and flat[i + 3] or nil }
  end
  return parts
end

-- One HMGET: the bucket's incarnation marker (field "|inc", or false), then per part its offset
-- and its token (each false when absent): {marker, offset 1, token 1, offset 2, token 2, ...}.
local function fence_read(off_key, parts)
  local fields = { '|inc' }
  for p = 1, #parts do
    fields[2 * p] = parts[p][1]
    fields[2 * p + 1] = parts[p][1] .. '|token'
  end
  return fence_call('HMGET', off_key, fields)
end

-- True when every part already carries `token`: a retry of a write whose reply was lost, which
-- must not be applied twice (stats and counters are deltas). `seen` is fence_read's reply.
local function fence_retried(seen, parts, token)
  if #parts == 0 then
    return false
  end
  for p = 1, #parts do
    if seen[2 * p + 1] ~= token then
      return false
    end
  end
  return true
end

-- The worker of a token "<worker id>:<cycle>".
local function fence_worker(token)
  return string.match(token, '^(.*):')
end

-- The cycle of a token "<worker id>:<cycle>" (-1: none).
local function fence_cycle(token)
  return tonumber(string.match(token, ':(%d+)$')) or -1
end

-- {0, field, actual} for the first part whose offset is not what the read returned (another
-- worker owns that partition now), or nil when the write may go ahead.
-- A write that moves no offset (only due reviews) leaves the offsets as they were, so two workers
-- that read the bucket before either wrote (one that lost the partition without knowing yet,
-- and its new owner) would both pass on offsets alone and apply the same reviews twice. So where
-- the part carries the token as read, the partition's token must still be that one, or this
-- worker's own (its earlier cycle's write, which the pipeline lays over the read when cycles
-- overlap): else {0, "<field>|token", token found}. An *earlier* token of this worker than the one
-- read is refused too: Redis went back in time between the read and the write (a crash with AOF
-- everysec, a failover to a replica behind) and lost the write the read saw; the worker's next
-- read finds it out (streams/worker/ledger.py) and resumes from what Redis holds.
local function fence_check(seen, parts, token)
  for p = 1, #parts do
    local actual = seen[2 * p] or ''
    if actual ~= parts[p][2] then
      return { 0, parts[p][1], actual }
    end
    local read, now = parts[p][4], seen[2 * p + 1] or ''
    if read and now ~= read then
      local mine = fence_worker(token)
      if fence_worker(now) ~= mine or (fence_worker(read) == mine and fence_cycle(now) < fence_cycle(read)) then
        return { 0, parts[p][1] .. '|token', now }
      end
    end
  end
  return nil
end

-- After the write, one HSET: each part's new offset (where it moves) and this write's token.
local function fence_mark(off_key, parts, token)
  local args = {}
  for p = 1, #parts do
    if parts[p][3] ~= '' then
      args[#args + 1] = parts[p][1]
      args[#args + 1] = parts[p][3]
    end
    args[#args + 1] = parts[p][1] .. '|token'
    args[#args + 1] = token
  end
  if #args > 0 then
    fence_call('HSET', off_key, args)
  end
end
