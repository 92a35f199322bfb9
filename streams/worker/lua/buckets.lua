-- buckets.lua: the driver of the per-bucket scripts (read_batch, write_batch, read_accounts,
-- write_accounts). The store loads each of them as `local function bucket(KEYS, ARGV) <file> end`
-- followed by this text (streams/worker/store.py, _script_source), so one call runs the script
-- for several buckets, one after the other, each exactly as if it had been called alone with its
-- own KEYS and ARGV. On a single Redis a whole cycle's reads (or writes) are one call instead of
-- one per bucket, and its keys and arguments travel packed in one string: the fixed cost of ~64
-- calls a cycle and of packing ~1,000 small arguments (client CPU) go away whatever the cycle's
-- size. On Redis Cluster every call carries one bucket (one slot), its keys declared as usual.
--
-- ARGV[1] = JSON [number of keys, number of arguments, ...], one pair per bucket (flat: cjson
--           builds no table per bucket).
-- ARGV[2], ARGV[3] = "", "" (plain: KEYS and ARGV[4..] hold each bucket's keys and arguments,
--           bucket after bucket), or JSON [length, ...] of every key and argument, and all of them
--           concatenated in that order (packed; no KEYS: single Redis only).
-- Returns the buckets' replies, in order.
local shape = cjson.decode(ARGV[1])
local lengths = ARGV[2] ~= '' and cjson.decode(ARGV[2]) or nil
local packed = ARGV[3]
local k, a, at, n = 0, 3, 1, 0
local function take()
  n = n + 1
  local len = lengths[n]
  local s = string.sub(packed, at, at + len - 1)
  at = at + len
  return s
end
local out = {}
for i = 1, #shape / 2 do
  local nk, na = shape[2 * i - 1], shape[2 * i]
  local keys, args = {}, {}
  if lengths then
    for j = 1, nk do
      keys[j] = take()
    end
    for j = 1, na do
      args[j] = take()
    end
  else
    for j = 1, nk do
      keys[j] = KEYS[k + j]
    end
    for j = 1, na do
      args[j] = ARGV[a + j]
    end
    k, a = k + nk, a + na
  end
  out[i] = bucket(keys, args)
end
return out
