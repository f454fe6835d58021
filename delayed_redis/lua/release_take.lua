-- release_take: release the task a slot finished and take the next one if one is ready, in one call.
-- This keeps a busy worker at one round trip per task. It consumes a notification before taking a task
-- exactly as BLPOP + dequeue would, so the go-delayed invariant (one notification per task) holds.
--
-- KEYS[1]  N             list of task bytes (LPOP)
-- KEYS[2]  N_noti        list of notifications (LPOP)
-- KEYS[3]  N_processing  hash worker_id -> task bytes (HDEL, HSET)
-- ARGV[1]  the worker id of the slot
-- Returns  the next task bytes, or nil when none is ready (the slot then blocks on N_noti)
--
-- Safe by its order, with no type checks on this hot path: the task released is finished, so whatever
-- fails after HDEL loses no task (at worst a notification, which the sweeper restores); HSET writes the
-- key HDEL just used. HDEL is also the first write, and it frees memory: at maxmemory the script still
-- runs to its end, so workers drain a queue that filled the memory.
redis.call('hdel', KEYS[3], ARGV[1])
if not redis.call('lpop', KEYS[2]) then
    return nil
end
local task = redis.call('lpop', KEYS[1])
if not task then
    return nil
end
redis.call('hset', KEYS[3], ARGV[1], task)
return task
