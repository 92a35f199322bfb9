-- read_accounts.lua: one cycle's read of one account bucket {b}: the account offsets of the
-- partitions whose copies touch it (the CAS expectation of write_accounts) and the account states.
--
-- KEYS[1] = <prefix>:{b}:off   KEYS[2] = <prefix>:{b}:acct
-- ARGV    = number of offset fields n, the n fields ("acct|<topic>:<p>"), then the account ids
-- Returns { {offset or "" per field}, {state record or false per account} }
local n = tonumber(ARGV[1])
local offsets = {}
for i = 1, n do
  offsets[i] = redis.call('HGET', KEYS[1], ARGV[1 + i]) or ''
end
local blobs = {}
if #ARGV > n + 1 then
  local accounts = {}
  for i = n + 2, #ARGV do
    accounts[#accounts + 1] = ARGV[i]
  end
  blobs = redis.call('HMGET', KEYS[2], unpack(accounts))
end
return { offsets, blobs }
