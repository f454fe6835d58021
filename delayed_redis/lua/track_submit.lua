-- track_submit: enqueue (or schedule) one tracked task and write its record, in one call.
--
-- KEYS[1]  N              list of task bytes (RPUSH)
-- KEYS[2]  N_noti         list of notifications (RPUSH)
-- KEYS[3]  N_scheduled    sorted set of scheduled tasks (ZADD), also its announcement channel
-- KEYS[4]  delayed_task:ID  hash: the task's record (HSET, PEXPIRE)
-- ARGV[1]  task bytes       ARGV[2] queue name      ARGV[3] function path
-- ARGV[4]  record TTL (ms) while pending
-- ARGV[5]  delay in ms, or "" to enqueue at once
-- ARGV[6]  16 hex chars keeping equal scheduled tasks apart
-- ARGV[7]  uniqueness: "0" none, "-1" refuse while pending, or a window in ms
-- Returns  {1, status} when enqueued, {0, status of the existing task} when refused
local rec = KEYS[4]
local unique = tonumber(ARGV[7])
local now = server_ms()
if unique ~= 0 then
    local s = redis.call('hget', rec, 's')
    if s then
        if s == 'queued' or s == 'scheduled' or s == 'failed' then
            return {0, s}
        end
        local enqueued = tonumber(redis.call('hget', rec, 'en') or '0')
        if unique > 0 and now - enqueued < unique then
            return {0, s}
        end
    end
end
local bad = wrong_type(KEYS[1], 'list', KEYS[2], 'list', KEYS[3], 'zset', rec, 'hash')
if bad then
    return redis.error_reply(bad)
end
redis.call('del', rec)
local status = 'queued'
if ARGV[5] ~= '' then
    status = 'scheduled'
    local due = now + tonumber(ARGV[5])
    local member = ARGV[6] .. ARGV[1]
    redis.call('zadd', KEYS[3], due, member)
    redis.call('hset', rec, 'm', member, 'due', due)
    redis.pcall('publish', KEYS[3], due)
else
    redis.call('rpush', KEYS[1], ARGV[1])
    redis.call('rpush', KEYS[2], '1')
end
redis.call('hset', rec, 's', status, 'q', ARGV[2], 'fn', ARGV[3], 't', ARGV[1], 'en', now, 'a', 0)
redis.call('pexpire', rec, ARGV[4])
return {1, status}
