-- progress.lua: record how far each partition is applied; values only ever increase.
-- Field <p> = "<offset>:<max_event_ms>" (the offset of the last applied record, and S_p).
-- Why a script: "only increases" must hold even if two workers race for one partition.
--
-- KEYS[1] = <prefix>:progress:<topic>
-- ARGV    = n, n x (partition, offset, max_event_ms)
-- Returns the whole hash (flat field, value list) so the caller learns S_all for free.
local n = tonumber(ARGV[1])
local i = 2
for k = 1, n do
  local field, offset, max_ms = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  i = i + 3
  local cur = redis.call('HGET', KEYS[1], field)
  if cur then
    local sep = string.find(cur, ':', 1, true)
    local cur_offset, cur_ms = string.sub(cur, 1, sep - 1), string.sub(cur, sep + 1)
    if tonumber(cur_offset) > tonumber(offset) then offset = cur_offset end
    if tonumber(cur_ms) > tonumber(max_ms) then max_ms = cur_ms end
  end
  redis.call('HSET', KEYS[1], field, offset .. ':' .. max_ms)
end
return redis.call('HGETALL', KEYS[1])
