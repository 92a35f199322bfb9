-- erased.lua: the erased users of a deployment (`churnwatch erase`, streams/worker/erase.py), as
-- every bucket holds them: HASH <tag>:erased, field "|salt" -> a random key made by the first erase,
-- sha1hex(salt .. user id) -> the UTC day of the erase, for every erased user (not only the
-- bucket's own: the account side writes members of any user into the account's bucket), and
-- "|groups" -> ",g1,g2,...," the groups of this bucket that hold an erased user of its own. A keyed
-- hash, not the id: the set keeps no personal data of its own.
-- Lua scripts cannot import, so the store puts this text in front of the scripts that write what a
-- user's events make (read_batch, write_batch, history, write_accounts: store.py, _PRELUDES).
--
-- erased_check(tag) returns nil while nothing was ever erased (one HMGET: all a script pays then),
-- else a function (user id, its group or nil) -> true when erased. Given the group (a user of this
-- bucket), a user in a group without an erased user is answered from "|groups" alone, without the
-- SHA-1 and the HEXISTS: most users, however many were erased (256 groups a bucket by default).
local function erased_check(tag)
  local key = tag .. ':erased'
  local found = redis.call('HMGET', key, '|salt', '|groups')
  local salt, groups = found[1], found[2] or ''
  if not salt then
    return nil
  end
  return function(user, group)
    if group and not string.find(groups, ',' .. group .. ',', 1, true) then
      return false
    end
    return redis.call('HEXISTS', key, redis.sha1hex(salt .. user)) == 1
  end
end
