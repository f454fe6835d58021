-- track_cancel: remove a queued or scheduled tracked task, atomically, and mark its record cancelled.
-- KEYS[1]  the record: delayed_task:ID (go-delayed layout) or {N}_task:ID (cluster layout)
-- KEYS[2..5] cluster layout only: {N}, {N}_noti, {N}_scheduled, {N}_processing (LREM, LPOP, ZREM, HGETALL)
-- ARGV[1]  record TTL in ms after cancelling
-- ARGV[2]  the task id
-- ARGV[3]  cluster layout only: the prefix of the queue's liveness keys ({N}_alive:)
-- Returns  1 when removed (it will not run); 2 when a live worker runs it: a stop
--          request published on channel delayed_cancel:<queue key> as "<slot id> <task id>"; 0 otherwise
-- In go-delayed's layout the queue's keys come from the record, and a worker's liveness key is its id
-- (not declared: single Redis only); in the cluster layout they are declared but for the holder's
-- liveness key, in the same slot (see track_read.lua).
local rec = KEYS[1]
-- A pending record is a hash, or a plain .delay()'s string (_pending.lua: `pending` then holds its
-- fields); pcall: a settled record is a string too (_settle.lua), and a settled task is not cancelled.
local s = redis.pcall('hget', rec, 's')
local pending = nil
if type(s) == 'table' then
    local value = redis.pcall('get', rec)
    pending = type(value) == 'string' and pending_fields(value) or nil
    s = pending and pending.s
end
if s ~= 'queued' and s ~= 'scheduled' and s ~= 'failed' then
    return 0
end
local queue = KEYS[2] or (pending and pending.q) or redis.call('hget', rec, 'q')
local notifications = KEYS[3] or (queue .. '_noti')
local scheduled = KEYS[4] or (queue .. '_scheduled')
local processing = KEYS[5] or (queue .. '_processing')
local alive = ARGV[3] or ''
local member, task
if pending then
    task = pending.t  -- a plain .delay(): queued, never scheduled
else
    member, task = redis.call('hget', rec, 'm'), redis.call('hget', rec, 't')
end
local removed = 0
if member and redis.call('zrem', scheduled, member) == 1 then
    removed = 1
elseif task and redis.call('lrem', queue, 1, task) == 1 then
    -- one notification per task: take the removed task's one (if a worker already took it, its dequeue
    -- finds one task fewer and returns nothing; a missing one is restored by the sweeper)
    redis.call('lpop', notifications)
    removed = 1
end
if removed == 0 then
    if task then
        local held = redis.call('hgetall', processing)
        for i = 1, #held, 2 do
            if held[i + 1] == task and redis.call('exists', alive .. held[i]) == 1 then
                -- a classic channel: requests are rare, and a worker hears every queue it serves on one
                -- subscription, whichever cluster node it is on
                redis.pcall('publish', 'delayed_cancel:' .. queue, held[i] .. ' ' .. ARGV[2])
                return 2
            end
        end
    end
    return 0
end
if pending then  -- the same cancelled hash as below, written anew
    redis.call('del', rec)
    redis.call('hset', rec, 'q', pending.q, 'fn', pending.fn, 'en', pending.en)
else
    redis.call('hdel', rec, 't', 'm', 'due')
end
redis.call('hset', rec, 's', 'cancelled', 'fi', server_ms())
redis.call('pexpire', rec, ARGV[1])
announce_end(rec)
return 1
