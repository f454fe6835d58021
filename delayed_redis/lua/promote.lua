-- promote: move scheduled tasks whose time has come into the queue.
-- Atomic, so any number of workers and sweepers can race on it without moving a task twice.
--
-- KEYS[1]  N             list of task bytes (RPUSH)
-- KEYS[2]  N_noti        list of notifications (RPUSH)
-- KEYS[3]  N_scheduled   sorted set, score = due unix ms, member = 16 hex chars + task bytes
--                        (ZRANGEBYSCORE, ZREM, ZRANGE)
-- ARGV[1]  now, unix ms
-- ARGV[2]  most tasks to move in this call
-- Returns  {number of tasks moved, due time in unix ms of the next scheduled task or -1 if none}, so a
--          worker can sleep until then instead of polling
local due = redis.call('zrangebyscore', KEYS[3], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
    redis.call('zrem', KEYS[3], member)
    redis.call('rpush', KEYS[1], string.sub(member, 17))
    redis.call('rpush', KEYS[2], '1')
end
local next_due = redis.call('zrange', KEYS[3], 0, 0, 'WITHSCORES')
return {#due, next_due[2] and tonumber(next_due[2]) or -1}
