-- announce: record the details of a starting worker's slots, and forget those of ids that are gone.
-- Runs once per worker start, never per task.
--
-- KEYS[1]  N_worker_info  hash worker_id -> JSON details (HSET, HKEYS, HDEL)
-- KEYS[2]  N_workers      sorted set of registered worker ids (ZSCORE; read only)
-- ARGV[1]  the details (JSON), the same for every id of this worker
-- ARGV[2..] the worker ids
-- Returns  how many stale entries were removed
--
-- An id leaves N_workers when its worker stops cleanly, or an hour after it died (the sweeper prunes
-- it). Pruning here keeps the hash as small as the registry without any work on the task path.
local bad = wrong_type(KEYS[1], 'hash', KEYS[2], 'zset')
if bad then
    return redis.error_reply(bad)
end
local fresh = {}
for i = 2, #ARGV do
    redis.call('hset', KEYS[1], ARGV[i], ARGV[1])
    fresh[ARGV[i]] = true
end
local removed = 0
for _, worker_id in ipairs(redis.call('hkeys', KEYS[1])) do
    if not fresh[worker_id] and not redis.call('zscore', KEYS[2], worker_id) then
        redis.call('hdel', KEYS[1], worker_id)
        removed = removed + 1
    end
end
return removed
