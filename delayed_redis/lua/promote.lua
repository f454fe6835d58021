-- promote: move scheduled tasks whose time has come into the queue.
-- Atomic, so any number of workers and sweepers can race on it without moving a task twice. Each call
-- moves at most ARGV[2] tasks (the caller calls again while a call moves that many), so that a burst of
-- tasks falling due together never blocks Redis for long, however large the sorted set.
--
-- KEYS[1]  N             list of task bytes (RPUSH)
-- KEYS[2]  N_noti        list of notifications (RPUSH)
-- KEYS[3]  N_scheduled   sorted set, score = due unix ms, member = 16 hex chars + task bytes
--                        (ZRANGEBYSCORE, ZREMRANGEBYRANK, ZRANGE)
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
if #due > 0 then
    -- The due members are the lowest ranks, 0 .. #due-1: one bulk RPUSH each to the queue and its
    -- notifications, then one ZREMRANGEBYRANK (one walk of the skiplist, where a ZREM per member walked it
    -- once each: 3x the time at 1M scheduled tasks). The new place first, the scheduled entries last.
    local tasks, ones = {}, {}
    for i, member in ipairs(due) do
        tasks[i] = string.sub(member, 17)
        ones[i] = '1'
    end
    redis.call('rpush', KEYS[1], unpack(tasks))
    redis.call('rpush', KEYS[2], unpack(ones))
    redis.call('zremrangebyrank', KEYS[3], 0, #due - 1)
end
local next_due = redis.call('zrange', KEYS[3], 0, 0, 'WITHSCORES')
local wait = -1
if next_due[2] then
    wait = math.max(0, tonumber(next_due[2]) - now)
end
return {#due, wait, now}
