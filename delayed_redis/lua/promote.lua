-- promote: move scheduled tasks whose time has come into the queue.
-- Atomic, so any number of workers and sweepers can race on it without moving a task twice.
--
-- KEYS[1]  N             list of task bytes (RPUSH)
-- KEYS[2]  N_noti        list of notifications (RPUSH)
-- KEYS[3]  N_scheduled   sorted set, score = due unix ms, member = 16 hex chars + task bytes
--                        (ZRANGEBYSCORE, ZREM)
-- ARGV[1]  now, unix ms
-- ARGV[2]  most tasks to move in this call
-- Returns  the number of tasks moved
local due = redis.call('zrangebyscore', KEYS[3], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
    redis.call('zrem', KEYS[3], member)
    redis.call('rpush', KEYS[1], string.sub(member, 17))
    redis.call('rpush', KEYS[2], '1')
end
return #due
