-- write_accounts.lua: one cycle's account states, members, extras and period counters of one
-- bucket {b}, atomically, fenced by the account offsets read (streams/worker/revenue.py).
-- Exactly-once: written only if every field still holds what the read returned, and its token is
-- still the one read or this worker's own (else another worker owns the partition now: "fenced";
-- the token matters for a write of due reviews alone, which moves no offset); a retry of a write whose reply was lost is recognised
-- by its token (kept per field, "<field>|token") and not applied twice (the counters are deltas).
-- fence_read / fence_retried / fence_check / fence_mark come from fence.lua, loaded in front of this file.
--
-- KEYS[1] = <prefix>:{b}:off   KEYS[2] = <prefix>:{b}:acct   KEYS[3] = <prefix>:{b}:ax
-- KEYS[4], KEYS[5], KEYS[6], KEYS[7] = <prefix>:{b}:rev:day, :rev:week, :rev:month, :rev:cohort
-- KEYS[8] = <prefix>:{b}:aside (field <account>: the alert side's state; <account>|held: held copies)
-- ARGV    = tag, token, parts JSON [field, expected or "", new, token as read or "" or false (not
--           checked: fence.lua's fence_check), ...] (flat),
--           counters JSON [[key index 4..7, field ("<period start ms>:<counter>", cohorts:
--           models.revenue_ledger.Cohorts.counters), delta], ...],
--           accounts JSON [[account, has state 0/1, extras JSON or "", members n, has alert side 0/1,
--           held 0 (unchanged) / 1 (set) / 2 (none left: delete), [group, user id, ...] of the members
--           written whose id is known: HSET <tag>:mof:<group> user account (keys.py member_of)], ...],
--           then per account: its state record (if it has one), the alert side's (if), the held copies
--           (if set), then n member key/record pairs
-- Erased users (`churnwatch erase`, erased.lua): a member record whose id (after its 25-byte head and
-- the rhythm if kept, models.account_health.Member) is erased, and its index entry, are not written; nor a record without id
-- (an id too long to keep) whose member key erase.lua recorded as "|m" .. key; nor is anything
-- of an account whose id is an erased user's (a user without account_id is its own account). The
-- counters (sums over all accounts) are.
-- Returns {1} written, {2} already written by this token, {0, field, actual} fenced.
local tag, token = ARGV[1], ARGV[2]
local parts = fence_parts(ARGV[3], 4)
local seen = fence_read(KEYS[1], parts)
if fence_retried(seen, parts, token) then
  return { 2 }
end
local fenced = fence_check(seen, parts, token)
if fenced then
  return fenced
end
local accounts = cjson.decode(ARGV[5])
local at = 6
local is_erased = erased_check(tag)
for a = 1, #accounts do
  local account, has_state, extras, n = accounts[a][1], accounts[a][2], accounts[a][3], accounts[a][4]
  local has_side, held = accounts[a][5], accounts[a][6]
  if is_erased and is_erased(account) then
    at = at + has_state + has_side + (held == 1 and 1 or 0) + 2 * n  -- its records skipped
  else
    if has_state == 1 then
      redis.call('HSET', KEYS[2], account, ARGV[at])
      at = at + 1
    end
    if has_side == 1 then
      redis.call('HSET', KEYS[8], account, ARGV[at])
      at = at + 1
    end
    if held == 1 then
      redis.call('HSET', KEYS[8], account .. '|held', ARGV[at])
      at = at + 1
    elseif held == 2 then
      redis.call('HDEL', KEYS[8], account .. '|held')
    end
    if extras ~= '' then
      redis.call('HSET', KEYS[3], account, extras)
    end
    for m = 1, n do
      local record = ARGV[at + 1]
      -- the id starts after the 25-byte head, or after the rhythm (a 0xFF marker and 4 bytes) when
      -- the record keeps one (Member.from_bytes: MEMBER_ID_AT)
      local id_at = (#record >= 30 and string.byte(record, 26) == 255) and 31 or 26
      local gone = is_erased and (#record >= id_at and is_erased(string.sub(record, id_at))
                                  or #record < id_at and is_erased('|m' .. ARGV[at]))
      if not gone then
        redis.call('HSET', tag .. ':m:' .. account, ARGV[at], record)
      end
      at = at + 2
    end
    local users = accounts[a][7]
    for u = 1, #users, 2 do
      if not (is_erased and is_erased(users[u + 1])) then
        redis.call('HSET', tag .. ':mof:' .. users[u], users[u + 1], account)
      end
    end
  end
end
local counters = cjson.decode(ARGV[4])
for c = 1, #counters do
  local key, field = KEYS[counters[c][1]], counters[c][2]
  if redis.call('HINCRBY', key, field, counters[c][3]) == 0 then
    redis.call('HDEL', key, field)  -- a retraction back to zero takes no room
  end
end
fence_mark(KEYS[1], parts, token)
return { 1 }
