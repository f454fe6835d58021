-- dequeue: after BLPOP took a notification from N_noti, take the task it announced.
-- Fixes go-delayed's script, whose `task == nil` test never matched (LPOP answers false) so an empty
-- queue made HSET fail; and it never overwrites a task the worker already holds.
--
-- KEYS[1]  N             list of task bytes (LPOP)
-- KEYS[2]  N_noti        list of notifications (RPUSH: gives the notification back, see below)
-- KEYS[3]  N_processing  hash worker_id -> task bytes the worker holds (HGET, HSET)
-- ARGV[1]  the worker id of the slot
-- Returns  the task bytes, or nil when the queue was empty (a surplus notification, now used up)
--
-- Safe by its order, with no type checks on this hot path: HGET fails on a wrong N_processing and LPOP on
-- a wrong N before anything is written, and HSET then writes a key HGET has read. At maxmemory LPOP, which
-- frees memory, is the first write, so a worker still takes tasks when memory is full.
local held = redis.call('hget', KEYS[3], ARGV[1])
if held then
    -- The slot lost the reply of an earlier call: hand that task back instead of taking a new one, and
    -- return the notification we consumed, since no task was taken for it.
    redis.call('rpush', KEYS[2], '1')
    return held
end
return take_head(KEYS[1], KEYS[3], ARGV[1])
