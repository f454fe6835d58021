-- promote: move scheduled tasks whose time has come into the queue.
-- Atomic, so any number of workers and sweepers can race on it without moving a task twice.
--
-- KEYS[1]  N             list of task bytes (RPUSH)
-- KEYS[2]  N_noti        list of notifications (RPUSH)
-- KEYS[3]  N_scheduled   sorted set, score = due unix ms, member = 16 hex chars + task bytes
--                        (ZRANGEBYSCORE, ZREM, ZRANGE)
-- ARGV[1]  now in unix ms, or "" for the Redis server's clock (the normal case: due times follow it)
-- ARGV[2]  most tasks to move in this call
-- Returns  {number of tasks moved, ms from now until the next scheduled task falls due or -1 if none,
--          now in unix ms}, so a worker can sleep until then instead of polling, whatever its own clock
local now = ARGV[1] ~= '' and tonumber(ARGV[1]) or server_ms()
local bad = wrong_type(KEYS[1], 'list', KEYS[2], 'list', KEYS[3], 'zset')
if bad then
    return redis.error_reply(bad)
end
local due = redis.call('zrangebyscore', KEYS[3], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
    -- The new place first, the scheduled entry last.
    redis.call('rpush', KEYS[1], string.sub(member, 17))
    redis.call('rpush', KEYS[2], '1')
    redis.call('zrem', KEYS[3], member)
end
local next_due = redis.call('zrange', KEYS[3], 0, 0, 'WITHSCORES')
local wait = -1
if next_due[2] then
    wait = math.max(0, tonumber(next_due[2]) - now)
end
return {#due, wait, now}
