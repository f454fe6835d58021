-- track_submit: enqueue (or schedule) one tracked task and write its record, in one call.
--
-- KEYS[1]  N              list of task bytes (RPUSH)
-- KEYS[2]  N_noti         list of notifications (RPUSH)
-- KEYS[3]  N_scheduled    sorted set of scheduled tasks (ZADD), also its announcement channel
-- KEYS[4]  delayed_task:ID  hash: the task's record (HSET, PEXPIRE)
-- ARGV[1]  task bytes       ARGV[2] (unused)        ARGV[3] function path
-- ARGV[4]  record TTL (ms) while pending
-- ARGV[5]  delay in ms, or "" to enqueue at once
-- ARGV[6]  16 hex chars keeping equal scheduled tasks apart
-- ARGV[7]  uniqueness: "0" none, "-1" refuse while pending, or a window in ms
-- ARGV[8]  the producer's unix time in ms (the record's "enqueued"; a unique window counts from it)
-- Returns  1 when enqueued, or the status of the existing task when refused
--
-- Safe by its order, with no type checks on this hot path (as enqueue.lua): the first write is the RPUSH
-- (or ZADD), which fails on a key of another type before anything is written; the record comes last.
local rec = KEYS[4]
local unique = tonumber(ARGV[7])
local now = tonumber(ARGV[8])
if unique ~= 0 then
    local s = redis.call('hget', rec, 's')
    if s then
        if s == 'queued' or s == 'scheduled' or s == 'failed' then
            return s
        end
        local enqueued = tonumber(redis.call('hget', rec, 'en') or '0')
        if unique > 0 and now - enqueued < unique then
            return s
        end
    end
end
local status = 'queued'
local due, member
if ARGV[5] ~= '' then
    -- the due time follows the server's clock, as schedule.lua's
    status, due, member = 'scheduled', server_ms() + tonumber(ARGV[5]), ARGV[6] .. ARGV[1]
    redis.call('zadd', KEYS[3], due, member)
    redis.pcall('publish', KEYS[3], due)
else
    redis.call('rpush', KEYS[1], ARGV[1])
    redis.call('rpush', KEYS[2], '1')
end
if unique ~= 0 then
    redis.call('del', rec)  -- a finished run of the same id (a new random id names no key)
end
redis.call('hset', rec, 's', status, 'q', KEYS[1], 'fn', ARGV[3], 't', ARGV[1], 'en', now)
if member then
    redis.call('hset', rec, 'm', member, 'due', due)
end
redis.call('pexpire', rec, ARGV[4])
return 1
