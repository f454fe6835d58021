-- requeue: release a slot's task and put a task back (a retry, or a hand-back at shutdown), atomically.
-- (delayed 1.2 released before re-enqueueing in a separate call; a worker dying in between lost the task.)
--
-- KEYS[1]  N             list of task bytes (RPUSH at the tail, or LPUSH at the front)
-- KEYS[2]  N_noti        list of notifications (RPUSH)
-- KEYS[3]  N_processing  hash worker_id -> task bytes (HDEL)
-- KEYS[4]  N_scheduled   sorted set, score = due time in ms, member = 16 hex chars + task bytes (ZADD)
-- ARGV[1]  the worker id of the slot
-- ARGV[2]  the task bytes to put back
-- ARGV[3]  delay in ms, by the Redis server's clock, or "0" to make it available at once
-- ARGV[4]  "1" to put it at the front of the queue
-- ARGV[5]  16 unique hex chars that keep equal tasks apart in the sorted set
-- Channel  N_scheduled (pub/sub, named like the sorted set): PUBLISH the due time (server unix ms), so idle
--          workers wake up for it instead of polling
-- Returns  1
local delay = tonumber(ARGV[3])
local bad = wrong_type(KEYS[1], 'list', KEYS[2], 'list', KEYS[3], 'hash', KEYS[4], 'zset')
if bad then
    return redis.error_reply(bad)
end
-- The new place first, the release last: if a write fails, the task is still held, never gone.
if delay > 0 then
    local due = server_ms() + delay
    redis.call('zadd', KEYS[4], due, ARGV[5] .. ARGV[2])
    -- pcall: an ACL user without PUBLISH rights still retries; workers then find the task by polling
    redis.pcall('publish', KEYS[4], due)
else
    if ARGV[4] == '1' then
        redis.call('lpush', KEYS[1], ARGV[2])
    else
        redis.call('rpush', KEYS[1], ARGV[2])
    end
    redis.call('rpush', KEYS[2], '1')
end
redis.call('hdel', KEYS[3], ARGV[1])
return 1
