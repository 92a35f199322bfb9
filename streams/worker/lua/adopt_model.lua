-- Adopt a learned successor of the model in use (streams/worker/model_record.py, `churnwatch learn`).
-- KEYS[1] cw:meta; ARGV: base id, new id, new JSON, comparison JSON, root id. Without a new id,
-- records the comparison (a successor kept out); with one, adopts only if the model in use is
-- still ``base`` (a take-over or another learner in between wins) and records the comparison
-- only then (it says "adopted": after a refused adoption the caller records the truth); clears
-- the save-list index (built with the old weights, as a take-over does) and keeps the records of the new model, its base (to roll back to) and
-- the root only. Returns {1} adopted, or {0, model in use}.
local meta = KEYS[1]
if ARGV[2] == '' then
  redis.call('HSET', meta, 'learn', ARGV[4])
  return {0, redis.call('HGET', meta, 'model') or ''}
end
local cur = redis.call('HGET', meta, 'model')
if cur ~= ARGV[1] then return {0, cur or ''} end
redis.call('HSET', meta, 'learn', ARGV[4], 'model:' .. ARGV[2], ARGV[3], 'model', ARGV[2], 'save_index', '')
local keep = {['model:' .. ARGV[2]] = true, ['model:' .. ARGV[1]] = true, ['model:' .. ARGV[5]] = true}
for _, f in ipairs(redis.call('HKEYS', meta)) do
  if string.sub(f, 1, 6) == 'model:' and not keep[f] then redis.call('HDEL', meta, f) end
end
return {1}
