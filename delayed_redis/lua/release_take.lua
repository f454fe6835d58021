-- release_take: release the task a slot finished and take the next one if one is ready, in one call.
-- This keeps a busy worker at one round trip per task. It consumes a notification before taking a task
-- exactly as BLPOP + dequeue would, so the go-delayed invariant (one notification per task) holds.
-- Releasing also forgets the task's poison count: it ran to the end, so deaths of earlier workers
-- holding the same bytes say nothing about it any more.
--
-- KEYS[1]  N             list of task bytes (LPOP)
-- KEYS[2]  N_noti        list of notifications (LPOP)
-- KEYS[3]  N_processing  hash worker_id -> task bytes (HGET, HDEL, HSET)
-- KEYS[4]  N_recoveries  hash sha1(task) -> times recovered (EXISTS; HDEL only when it exists)
-- KEYS[5]  N_throughput  hash of per-minute counters (HINCRBY 'd:<minute>' when a task was released;
--                        see count_minute in the prelude)
-- ARGV[1]  the worker id of the slot
-- ARGV[2]  "0" to release only; "1" (or absent) to take the next task too
-- ARGV[3]  the current unix minute, for the counter (absent: nothing is counted)
-- Returns  the next task bytes, or nil when none is ready or none was asked for (the slot then blocks
--          on N_noti)
--
-- Safe by its order, with no type checks on this hot path: the task released is finished, so whatever
-- fails after HDEL loses no task (at worst a notification, which the sweeper restores); HSET writes the
-- key HDEL just used. Reads (EXISTS, HGET) come first and every write frees memory or rewrites the key
-- just read (HDEL, LPOP, then HSET), so at maxmemory the script still runs to its end, and workers
-- drain a queue that filled the memory.
if release_held(KEYS[3], KEYS[4], ARGV[1]) > 0 then
    count_minute(KEYS[5], 'd:', ARGV[3])
end
if ARGV[2] == '0' or not redis.call('lpop', KEYS[2]) then
    return nil
end
return take_head(KEYS[1], KEYS[3], ARGV[1])
