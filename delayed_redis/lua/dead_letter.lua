-- dead_letter: release a slot's task and record a dead-letter entry, atomically; keep the list bounded.
--
-- KEYS[1]  N_processing  hash worker_id -> task bytes (HDEL)
-- KEYS[2]  N_dead        list of JSON dead-letter entries, newest first (LPUSH, LTRIM)
-- ARGV[1]  the worker id whose task to release, or "" to release nothing
-- ARGV[2]  the entry (JSON)
-- ARGV[3]  how many entries to keep
-- Returns  1
if ARGV[1] ~= '' then
    redis.call('hdel', KEYS[1], ARGV[1])
end
redis.call('lpush', KEYS[2], ARGV[2])
redis.call('ltrim', KEYS[2], 0, tonumber(ARGV[3]) - 1)
return 1
