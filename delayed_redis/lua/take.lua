-- take: take the next ready task of a queue without blocking, for an idle or busy slot of a worker that
-- serves several queues in the cluster layout (their keys are in different hash slots, so no one script
-- can look at them all, as release_take_first does in go-delayed's layout).
-- Consumes a notification before taking a task, exactly as BLPOP + dequeue would.
--
-- KEYS[1]  N             list of task bytes (LPOP)
-- KEYS[2]  N_noti        list of notifications (LPOP)
-- KEYS[3]  N_processing  hash worker_id -> task bytes (HGET, HSET)
-- ARGV[1]  the worker id of the slot
-- Returns  the task the slot holds in N already (a lost reply), else the next task, or nil if none is ready
local held = redis.call('hget', KEYS[3], ARGV[1])
if held then
    return held
end
if not redis.call('lpop', KEYS[2]) then
    return nil
end
return take_head(KEYS[1], KEYS[3], ARGV[1])
