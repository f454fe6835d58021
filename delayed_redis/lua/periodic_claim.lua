-- periodic_claim: claim ticks of a periodic schedule and enqueue their tasks, atomically.
-- Every process that knows the schedule computes the same ticks and calls this script; the record's last
-- tick is a compare-and-set, so each tick is enqueued by exactly one of them.
--
-- KEYS[1]  delayed:periodic:<name>  hash: last_tick, enqueued, and facts for `delayed periodic list`
-- KEYS[2]  delayed:periodic         set of schedule names
-- KEYS[3]  N        list of task bytes (RPUSH)
-- KEYS[4]  N_noti   list of notifications (RPUSH)
-- ARGV[1]  the schedule name; ARGV[2] the last tick the caller saw; ARGV[3] the new last tick
-- ARGV[4]  number of fact pairs F; ARGV[5 .. 4+2F] field, value; then the task bytes
-- Returns  {1, ARGV[3]} when this call claimed; else {0, the last tick the record holds or ""}
local stored = redis.call('hget', KEYS[1], 'last_tick')
if stored ~= ARGV[2] then
    return {0, stored or ''}
end
local bad = wrong_type(KEYS[3], 'list', KEYS[4], 'list')
if bad then
    return redis.error_reply(bad)
end
local first_task = 5 + 2 * tonumber(ARGV[4])
-- Tasks first: if a write failed after them, the next claim would only find them enqueued already.
for i = first_task, #ARGV do
    redis.call('rpush', KEYS[3], ARGV[i])
    redis.call('rpush', KEYS[4], '1')
end
if #ARGV >= first_task then
    redis.call('hincrby', KEYS[1], 'enqueued', #ARGV - first_task + 1)
end
for i = 5, first_task - 1, 2 do
    redis.call('hset', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('hset', KEYS[1], 'last_tick', ARGV[3])
redis.call('sadd', KEYS[2], ARGV[1])
return {1, ARGV[3]}
