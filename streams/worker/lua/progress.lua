-- progress.lua: record how far each partition is applied; values only ever increase.
-- Field <p> = "<offset>:<max_event_ms>:<fingerprint>:<incarnation>": the offset of the last
-- applied record, S_p, a checksum of that record (to recognise a replaced topic at the next
-- assignment) and the store incarnation it was written in (a value of another incarnation
-- belongs to data Redis lost: it is replaced, never merged). Older values "<offset>:<ms>" read
-- as fingerprint "" and incarnation "".
-- Why a script: "only increases" must hold even if two workers race for one partition.
--
-- Sent in the same pipeline as a cycle's fenced state writes (streams.worker.store.Store.write with
-- a ProgressWrite), it is guarded: written only if every bucket write of the cycle applied, i.e.
-- each bucket's offsets hash holds the cycle's token (a fenced or lost bucket write leaves the
-- progress as it was, as when the worker stopped between its write and its progress).
--
-- Each partition also carries its floor: the offset of the writer's last progress write of it
-- that Redis acknowledged (or its progress as read when it took the partition; "" none). Progress
-- only increases, so a value of the same incarnation below it (or none at all) means Redis went
-- back in time (a crash with AOF everysec, a failover to a replica behind) and lost that write with
-- the states written before it: nothing is written, {0, partition, value found}, and the worker
-- resumes from what Redis holds (streams/worker/ledger.py).
--
-- KEYS[1] = <prefix>:progress:<topic>, then (guarded) the <prefix>:{b}:off of each bucket written
-- ARGV    = n, n x (partition, offset, max_event_ms, fingerprint, incarnation, floor),
--           then (guarded) the cycle's token and one offset field "<topic>:<p>" per bucket key
-- Returns the whole hash (flat field, value list) so the caller learns S_all for free; false
-- when guarded and a bucket write did not apply (nothing written); {0, partition, value} below a floor.
local n = tonumber(ARGV[1])
local W = 6
local i = 2
if #KEYS > 1 then
  local token = ARGV[2 + W * n]
  for k = 2, #KEYS do
    if redis.call('HGET', KEYS[k], ARGV[1 + W * n + k] .. '|token') ~= token then
      return false
    end
  end
end
-- Each partition's value read once, for its floor and its merge: one HMGET (in chunks, far below
-- unpack()'s limit whatever the partition count).
local found = {}
for first = 1, n, 1000 do
  local fields = {}
  for k = first, math.min(first + 999, n) do
    fields[#fields + 1] = ARGV[2 + W * (k - 1)]
  end
  local got = redis.call('HMGET', KEYS[1], unpack(fields))
  for j = 1, #fields do
    found[first + j - 1] = got[j]
  end
end
for k = 1, n do
  local j = 2 + W * (k - 1)
  local field, inc, floor = ARGV[j], ARGV[j + 4], ARGV[j + 5]
  if floor ~= '' then
    local cur = found[k]
    local c_off, c_inc
    if cur then
      c_off, c_inc = string.match(cur, '^([^:]*):[^:]*:?[^:]*:?([^:]*)$')
    end
    if c_inc == inc and tonumber(c_off) < tonumber(floor) then
      return { 0, field, cur }
    elseif not cur then
      return { 0, field, '' }
    end
  end
end
local set = {}
for k = 1, n do
  local field, offset, max_ms, fp, inc = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  i = i + W
  local cur = found[k]
  if cur then
    local c_off, c_ms, c_fp, c_inc = string.match(cur, '^([^:]*):([^:]*):?([^:]*):?([^:]*)$')
    if c_inc == inc then
      if tonumber(c_off) > tonumber(offset) then
        offset, fp = c_off, c_fp
      end
      if tonumber(c_ms) > tonumber(max_ms) then max_ms = c_ms end
    end
  end
  set[#set + 1] = field
  set[#set + 1] = offset .. ':' .. max_ms .. ':' .. fp .. ':' .. inc
end
for first = 1, #set, 1000 do
  redis.call('HSET', KEYS[1], unpack(set, first, math.min(first + 999, #set)))
end
return redis.call('HGETALL', KEYS[1])
