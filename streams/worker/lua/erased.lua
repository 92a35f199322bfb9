-- erased.lua: the erased users of a deployment (`churnwatch erase`, streams/worker/erase.py), as
-- every bucket holds them: HASH <tag>:erased, field "|salt" -> a random key made by the first erase,
-- and sha1hex(salt .. user id) -> the UTC day of the erase, for every erased user (not only the
-- bucket's own: the account side writes members of any user into the account's bucket). A keyed
-- hash, not the id: the set keeps no personal data of its own.
-- Lua scripts cannot import, so the store puts this text in front of the scripts that write what a
-- user's events make (read_batch, write_batch, history, write_accounts: store.py, _PRELUDES).
--
-- erased_check(tag) returns nil while nothing was ever erased (one HGET: all a script pays then),
-- else a function user id -> true when erased.
local function erased_check(tag)
  local key = tag .. ':erased'
  local salt = redis.call('HGET', key, '|salt')
  if not salt then
    return nil
  end
  return function(user)
    return redis.call('HEXISTS', key, redis.sha1hex(salt .. user)) == 1
  end
end
