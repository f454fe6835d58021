-- track_submit: enqueue (or schedule) tracked tasks and write their records, in one call.
-- One task (a .delay()) or a batch (queue.enqueue_many(..., track=True)); each task is checked and
-- written in turn, so a batch repeating an id gets the first task's handle for the later ones.
--
-- KEYS[1]  N              list of task bytes (RPUSH)
-- KEYS[2]  N_noti         list of notifications (RPUSH)
-- KEYS[3]  N_scheduled    sorted set of scheduled tasks (ZADD), also its announcement channel
-- KEYS[3+i]  delayed_task:ID  hash: task i's record (HSET, PEXPIRE); {N}_task:ID in the cluster layout; a
--            settled one is a string (see _settle.lua), read here for a unique id and replaced (DEL) by
--            the new run
-- ARGV[1]  delay in ms, or "" to enqueue at once
-- ARGV[2]  uniqueness: "0" none, "-1" refuse while pending, or a window in ms
-- ARGV[3]  the producer's unix time in ms (the records' "enqueued"; a unique window counts from it)
-- ARGV[4i..4i+3], i = 1..#KEYS-3: task i's bytes, function path, record TTL (ms) while pending, and 16
--          hex chars keeping equal scheduled tasks apart
-- Returns  one reply per task: 1 when enqueued, or the status of the existing task when refused
--
-- Safe by its order, with no type checks on this hot path (as enqueue.lua): the first write is the RPUSH
-- (or ZADD), which fails on a key of another type before anything is written; the record comes last.
local unique = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local due
if ARGV[1] ~= '' then
    -- the due time follows the server's clock, as schedule.lua's
    due = server_ms() + tonumber(ARGV[1])
end
local replies = {}
local scheduled = false
for i = 1, #KEYS - 3 do
    local rec, data = KEYS[3 + i], ARGV[4 * i]
    local refused
    if unique ~= 0 then
        -- a pending record (a hash, or a plain .delay()'s string: a caller may name its id) or a settled one
        local s, en = record_state(rec)
        if s then
            if s == 'queued' or s == 'scheduled' or s == 'failed' then
                refused = s
            elseif unique > 0 and now - (en or 0) < unique then
                refused = s
            end
        end
    end
    if refused then
        replies[i] = refused
    else
        local status, member = 'queued', nil
        if due then
            status, member = 'scheduled', ARGV[4 * i + 3] .. data
            redis.call('zadd', KEYS[3], due, member)
            scheduled = true
        else
            redis.call('rpush', KEYS[1], data)
            redis.call('rpush', KEYS[2], '1')
        end
        if unique ~= 0 then
            redis.call('del', rec)  -- a finished run of the same id (a new random id names no key)
        end
        redis.call('hset', rec, 's', status, 'q', KEYS[1], 'fn', ARGV[4 * i + 1], 't', data, 'en', now)
        if member then
            redis.call('hset', rec, 'm', member, 'due', due)
        end
        redis.call('pexpire', rec, ARGV[4 * i + 2])
        replies[i] = 1
    end
end
if scheduled then
    redis.pcall('publish', KEYS[3], due)
end
return replies
