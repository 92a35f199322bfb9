-- reach_ranks.lua: slices of one bucket's save-list index sets (read only), so a reader asks a
-- bucket's 256 small sets in one call instead of 256 (streams.views.indexed_save_list).
-- Sent with EVAL (not loaded with the worker's scripts): readers run it rarely.
--
-- KEYS[1] = <prefix>:{b}:stats   (routes the call to the bucket's slot; not read)
-- ARGV    = tag "<prefix>:{b}", then one string of space-separated (group, start, stop) triples
--           (one argument: the client packs each argument separately): ZREVRANGE ranks of <tag>:r:<group>
-- Returns one flat list per triple: user, score, user, score, ... (highest score first)
local tag = ARGV[1]
local n = {}
for x in string.gmatch(ARGV[2], '%-?%d+') do
  n[#n + 1] = x
end
local out = {}
for i = 1, #n, 3 do
  out[#out + 1] = redis.call('ZREVRANGE', tag .. ':r:' .. n[i], n[i + 1], n[i + 2], 'WITHSCORES')
end
return out
