-- read_accounts.lua: one cycle's read of one account bucket {b}: the account offsets of the
-- partitions whose copies touch it (the CAS expectation of write_accounts), and per account its
-- revenue state, its extras (last downgrade, open alert) and its members, and the token of each
-- partition's last account write, which the write expects still there (fence.lua's fence_check:
-- a review alone moves no offset).
--
-- KEYS[1] = <prefix>:{b}:off   KEYS[2] = <prefix>:{b}:acct   KEYS[3] = <prefix>:{b}:ax
-- KEYS[4] = <prefix>:{b}:aside (the alert side's state and held copies per account)
-- ARGV    = tag "<prefix>:{b}", number of offset fields n, the n fields ("acct|<topic>:<p>"), then
--           the account ids (members live in <tag>:m:<account>, same slot)
-- Returns { {offset or "" per field}, {state or false per account}, {extras or false per account},
--           {{member key, record, ...} per account}, {token "<worker>:<cycle>" or "" per field},
--           {alert side's state or false per account}, {held copies JSON or false per account} }
local tag, n = ARGV[1], tonumber(ARGV[2])
local parts = {}
for i = 1, n do
  parts[i] = { ARGV[2 + i] }
end
local seen = fence_read(KEYS[1], parts)  -- fence.lua: one HMGET, {marker, offset 1, token 1, ...}
local offsets, tokens = {}, {}
for i = 1, n do
  offsets[i] = seen[2 * i] or ''
  tokens[i] = seen[2 * i + 1] or ''
end
local accounts = {}
for i = n + 3, #ARGV do
  accounts[#accounts + 1] = ARGV[i]
end
local blobs, extras, members, sides, held = {}, {}, {}, {}, {}
if #accounts > 0 then
  blobs = redis.call('HMGET', KEYS[2], unpack(accounts))
  extras = redis.call('HMGET', KEYS[3], unpack(accounts))
  sides = redis.call('HMGET', KEYS[4], unpack(accounts))
  local held_fields = {}
  for i = 1, #accounts do
    held_fields[i] = accounts[i] .. '|held'
  end
  held = redis.call('HMGET', KEYS[4], unpack(held_fields))
  for i = 1, #accounts do
    members[i] = redis.call('HGETALL', tag .. ':m:' .. accounts[i])
  end
end
return { offsets, blobs, extras, members, tokens, sides, held }
