-- bury: store the dead letter of a poison task and take the task out of N_poison, atomically; nothing
-- happens if it is already gone (two sweepers burying the same task store one letter).
--
-- KEYS[1]  N_poison  list of poison tasks set aside by sweep.lua (LREM)
-- KEYS[2]  N_dead    list of JSON dead-letter entries, newest first (LPUSH, LTRIM)
-- ARGV[1]  the N_poison entry, byte for byte
-- ARGV[2]  the dead-letter entry (JSON, built by pydelayed's core)
-- ARGV[3]  how many dead letters to keep
-- Returns  1 if the entry was found (and the letter stored), else 0
-- LREM must come first (it says whether the task is still there), so the types are checked before it:
-- the writes after it cannot fail on a key of another type.
local bad = wrong_type(KEYS[1], 'list', KEYS[2], 'list')
if bad then return redis.error_reply(bad) end
local found = redis.call('lrem', KEYS[1], 1, ARGV[1])
if found == 0 then return 0 end
redis.call('lpush', KEYS[2], ARGV[2])
redis.call('ltrim', KEYS[2], 0, tonumber(ARGV[3]) - 1)
return 1
