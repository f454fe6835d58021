-- throttle: give a held task a start time under a rate limit shared by every worker, atomically.
-- The limit is kept as the next free start time (server ms); each start moves it one interval on.
-- A task that comes too early reserves the next free start, moves to the scheduled set for that time
-- and is released: it is never dropped, and no worker waits for it. When it comes back it finds its
-- reservation (by the sha1 of its bytes) and starts without taking another start time.
--
-- KEYS[1]  delayed:rate:<function>           string: next free start time, server unix ms
-- KEYS[2]  delayed:rate:<function>:reserved  hash sha1(task bytes) -> reserved starts not used yet
-- KEYS[3]  N_processing  hash worker_id -> task bytes (HDEL when the task is put aside)
-- KEYS[4]  N_scheduled   sorted set, score = due time in ms, member = 16 hex chars + task bytes (ZADD)
-- ARGV[1]  the worker id of the slot; ARGV[2] the task bytes; ARGV[3] the interval in ms (may be
--          fractional); ARGV[4] 16 unique hex chars; ARGV[5] the sha1 of the task bytes (computed by
--          the caller: not every Lua host has redis.sha1hex)
-- Channel  N_scheduled: PUBLISH the due time, as the requeue script does
-- Returns  0 when the task may start now, else the ms until its reserved start
-- The server's clock to the microsecond (in ms): limits faster than 1000/s space starts below 1 ms.
local time = redis.call('time')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local interval = tonumber(ARGV[3])
local digest = ARGV[5]
local reserved = tonumber(redis.call('hget', KEYS[2], digest) or '0')
if reserved > 0 then
    redis.call('hincrby', KEYS[2], digest, -1)
    if reserved == 1 then redis.call('hdel', KEYS[2], digest) end
    return 0
end
local free = tonumber(redis.call('get', KEYS[1]) or '0')
if free <= now then
    redis.call('set', KEYS[1], string.format('%.3f', now + interval), 'px', math.ceil(interval) + 1000)
    return 0
end
local bad = wrong_type(KEYS[2], 'hash', KEYS[3], 'hash', KEYS[4], 'zset')
if bad then
    return redis.error_reply(bad)
end
local due = math.ceil(free)
redis.call('set', KEYS[1], string.format('%.3f', free + interval), 'px', math.ceil(free + interval - now) + 1000)
redis.call('hincrby', KEYS[2], digest, 1)
-- a reservation whose task never comes back (deleted by hand) goes an hour after its time
redis.call('pexpire', KEYS[2], math.ceil(due - now) + 3600000)
-- The new place first, the release last: if a write fails, the task is still held, never gone.
redis.call('zadd', KEYS[4], due, ARGV[4] .. ARGV[2])
redis.pcall('publish', KEYS[4], due)
redis.call('hdel', KEYS[3], ARGV[1])
return math.max(1, math.ceil(due - now))
