-- keep_alive: refresh the liveness keys of a worker's slots and its N_workers entries, in one call.
--
-- KEYS[1]  N_workers    sorted set worker_id -> last keep-alive, unix ms (ZADD, best effort)
-- KEYS[2..] <worker_id>  liveness keys (PEXPIRE; SET only if one expired)
-- ARGV[1]  TTL in ms
-- ARGV[2]  now, unix ms (for the registry)
-- ARGV[3..] the worker ids, in the cluster layout where KEYS[2..] are {N}_alive:<id> (absent: the keys
--          are the ids)
-- Returns  the number of ids that had expired and were set again
-- PEXPIRE needs no memory, so Redis allows it at maxmemory (SET it refuses): a live worker's ids stay
-- alive when memory is full, and the sweeper does not take its running tasks away.
local renewed = 0
for i = 2, #KEYS do
    if redis.call('pexpire', KEYS[i], ARGV[1]) == 0 then
        redis.call('set', KEYS[i], '1', 'PX', ARGV[1])
        renewed = renewed + 1
    end
    redis.pcall('zadd', KEYS[1], ARGV[2], ARGV[i + 1] or KEYS[i])
end
return renewed
