-- read_accounts.lua: one cycle's read of one account bucket {b}: the account offsets of the
-- partitions whose copies touch it (the CAS expectation of write_accounts), and per account its
-- revenue state, its extras (last downgrade, open alert) and its members.
--
-- KEYS[1] = <prefix>:{b}:off   KEYS[2] = <prefix>:{b}:acct   KEYS[3] = <prefix>:{b}:ax
-- ARGV    = tag "<prefix>:{b}", number of offset fields n, the n fields ("acct|<topic>:<p>"), then
--           the account ids (members live in <tag>:m:<account>, same slot)
-- Returns { {offset or "" per field}, {state or false per account}, {extras or false per account},
--           {{member key, record, ...} per account} }
local tag, n = ARGV[1], tonumber(ARGV[2])
local offsets = {}
for i = 1, n do
  offsets[i] = redis.call('HGET', KEYS[1], ARGV[2 + i]) or ''
end
local accounts = {}
for i = n + 3, #ARGV do
  accounts[#accounts + 1] = ARGV[i]
end
local blobs, extras, members = {}, {}, {}
if #accounts > 0 then
  blobs = redis.call('HMGET', KEYS[2], unpack(accounts))
  extras = redis.call('HMGET', KEYS[3], unpack(accounts))
  for i = 1, #accounts do
    members[i] = redis.call('HGETALL', tag .. ':m:' .. accounts[i])
  end
end
return { offsets, blobs, extras, members }
