-- buckets.lua: the driver of the per-bucket scripts (read_batch, write_batch, read_accounts,
-- write_accounts). The store loads each of them as `local function bucket(KEYS, ARGV) <file> end`
-- followed by this text (streams/worker/store.py, _script_source), so one call runs the script
-- for several buckets, one after the other, each exactly as if it had been called alone: on a
-- single Redis a whole cycle's reads (or writes) are one call instead of one per bucket, which
-- spared the fixed cost of ~64 calls a cycle (client packing, server dispatch) whatever the
-- cycle's size. On Redis Cluster every call still carries one bucket (one slot).
--
-- ARGV[1] = JSON [[number of keys, number of arguments], ...], one pair per bucket; KEYS and
--           ARGV[2..] hold each bucket's own keys and arguments, bucket after bucket.
-- Returns the buckets' replies, in order.
local shape = cjson.decode(ARGV[1])
local out, k, a = {}, 0, 1
for i = 1, #shape do
  local nk, na = shape[i][1], shape[i][2]
  local keys, args = {}, {}
  for j = 1, nk do
    keys[j] = KEYS[k + j]
  end
  for j = 1, na do
    args[j] = ARGV[a + j]
  end
  k, a = k + nk, a + na
  out[i] = bucket(keys, args)
end
return out
