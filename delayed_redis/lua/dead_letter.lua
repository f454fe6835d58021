-- dead_letter: release a slot's task and record a dead-letter entry, atomically; keep the list bounded.
--
-- KEYS[1]  N_processing  hash worker_id -> task bytes (HDEL)
-- KEYS[2]  N_dead        list of JSON dead-letter entries, newest first (LPUSH, LTRIM)
-- KEYS[3]  N_throughput  hash of per-minute counters (HINCRBY 'f:<minute>'; see count_minute)
-- ARGV[1]  the worker id whose task to release, or "" to release nothing
-- ARGV[2]  the entry (JSON)
-- ARGV[3]  how many entries to keep
-- ARGV[4]  the current unix minute, for the counter (absent: nothing is counted)
-- Returns  1
local keep = tonumber(ARGV[3])
local bad = wrong_type(KEYS[1], 'hash', KEYS[2], 'list')
if bad then
    return redis.error_reply(bad)
end
-- The entry first, the release last: if a write fails, the task is still held, never gone.
redis.call('lpush', KEYS[2], ARGV[2])
redis.call('ltrim', KEYS[2], 0, keep - 1)
count_minute(KEYS[3], 'f:', ARGV[4])
if ARGV[1] ~= '' then
    redis.call('hdel', KEYS[1], ARGV[1])
end
return 1
