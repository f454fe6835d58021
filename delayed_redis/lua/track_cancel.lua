-- track_cancel: remove a queued or scheduled tracked task, atomically, and mark its record cancelled.
-- KEYS[1]  delayed_task:ID
-- ARGV[1]  record TTL in ms after cancelling
-- ARGV[2]  the task id
-- Returns  1 when removed (it will not run); 2 when a live worker runs it: the record is marked and the
--          request published on channel delayed_cancel:<queue> as "<slot id> <task id>"; 0 otherwise
-- The queue's keys come from the record (not declared in KEYS: single-node Redis only).
local rec = KEYS[1]
-- pcall: a settled record is a string (_settle.lua), and a settled task is not cancelled
local s = redis.pcall('hget', rec, 's')
if s ~= 'queued' and s ~= 'scheduled' and s ~= 'failed' then
    return 0
end
local queue = redis.call('hget', rec, 'q')
local member = redis.call('hget', rec, 'm')
local task = redis.call('hget', rec, 't')
local removed = 0
if member and redis.call('zrem', queue .. '_scheduled', member) == 1 then
    removed = 1
elseif task and redis.call('lrem', queue, 1, task) == 1 then
    -- one notification per task: take the removed task's one (if a worker already took it, its dequeue
    -- finds one task fewer and returns nothing; a missing one is restored by the sweeper)
    redis.call('lpop', queue .. '_noti')
    removed = 1
end
if removed == 0 then
    if task then
        local held = redis.call('hgetall', queue .. '_processing')
        for i = 1, #held, 2 do
            if held[i + 1] == task and redis.call('exists', held[i]) == 1 then
                redis.call('hset', rec, 'cx', 1)
                redis.pcall('publish', 'delayed_cancel:' .. queue, held[i] .. ' ' .. ARGV[2])
                return 2
            end
        end
    end
    return 0
end
redis.call('hdel', rec, 't', 'm', 'due')
redis.call('hset', rec, 's', 'cancelled', 'fi', server_ms())
redis.call('pexpire', rec, ARGV[1])
redis.pcall('publish', rec, 'done')
return 1
