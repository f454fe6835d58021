-- dequeue_first: dequeue for a worker serving several queues in strict priority order. BLPOP over the
-- queues' N_noti lists (in priority order) took a notification of queue i; take queue i's task.
--
-- KEYS     three keys per queue, highest priority first; for queue j (1-based), at 3j-2 .. 3j:
--   N             list of task bytes (LPOP)
--   N_noti        list of notifications (RPUSH: gives the notification back, see below)
--   N_processing  hash worker_id -> task bytes the worker holds (HGET, HSET)
-- ARGV[1]  the worker id of the slot
-- ARGV[2]  index i of the queue whose notification BLPOP took
-- Returns  {j, task bytes} for the task held in queue j, or nil when queue i was empty (a surplus
--          notification, now used up)
-- Order: every HGET (a read) before any write; LPOP frees memory before HSET writes.
local i = tonumber(ARGV[2])
for j = 1, #KEYS / 3 do
    local held = redis.call('hget', KEYS[3 * j], ARGV[1])
    if held then
        -- The slot lost the reply of an earlier call: hand that task back instead of taking a new one,
        -- and return the notification we consumed, since no task was taken for it.
        redis.call('rpush', KEYS[3 * i - 1], '1')
        return {j, held}
    end
end
local task = take_head(KEYS[3 * i - 2], KEYS[3 * i], ARGV[1])
if not task then
    return nil
end
return {i, task}
