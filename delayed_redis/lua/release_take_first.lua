-- release_take_first: release_take for a worker serving several queues in strict priority order.
-- Releases the slot's task from its own queue (forgetting its poison count, as release_take does),
-- then takes the next task of the first queue that has one: still one round trip per busy task.
--
-- KEYS     four keys per queue, highest priority first, then one more; for queue j (1-based), at 4j-3 .. 4j:
--   N             list of task bytes (LPOP)
--   N_noti        list of notifications (LPOP)
--   N_processing  hash worker_id -> task bytes (HGET, HDEL, HSET)
--   N_recoveries  hash sha1(task) -> times recovered (EXISTS; HDEL only when it exists)
--   and last: N_throughput of the queue holding the finished task (HINCRBY, see count_minute)
-- ARGV[1]  the worker id of the slot
-- ARGV[2]  index j of the queue holding the finished task
-- ARGV[3]  "0" to release only; "1" to take the next task too
-- ARGV[4]  the current unix minute, for the counter (absent: nothing is counted)
-- Returns  {j, task bytes} for the task taken from queue j, or nil when none is ready or none was asked
-- Order: as release_take, reads first; HDEL and LPOP free memory before HSET writes the key HDEL used.
local mine = 4 * tonumber(ARGV[2])
if release_held(KEYS[mine - 1], KEYS[mine], ARGV[1]) > 0 then
    count_minute(KEYS[#KEYS], 'd:', ARGV[4])
end
if ARGV[3] == '0' then
    return nil
end
for j = 1, (#KEYS - 1) / 4 do
    -- A notification with no task behind it (a surplus the sweeper will trim) is used up; try the next.
    if redis.call('lpop', KEYS[4 * j - 2]) then
        local task = take_head(KEYS[4 * j - 3], KEYS[4 * j - 1], ARGV[1])
        if task then
            return {j, task}
        end
    end
end
return nil
