-- claim: take a worker id (go-delayed's liveness key, with a TTL) unless someone holds it, and register
-- it in N_workers for `delayed info`, in one call.
--
-- KEYS[1]  <worker_id>  liveness key (EXISTS, PEXPIRE, SET)
-- KEYS[2]  N_workers    sorted set worker_id -> last keep-alive, unix ms (ZADD, best effort)
-- ARGV[1]  TTL in ms
-- ARGV[2]  now, unix ms (for the registry)
-- ARGV[3]  the worker id, in the cluster layout where KEYS[1] is {N}_alive:<id> (absent: KEYS[1] is it)
-- Returns  1 if claimed, 0 if the id is taken
if redis.call('exists', KEYS[1]) == 1 then
    return 0
end
-- PEXPIRE of the absent key changes nothing, but it is a write that needs no memory: after it Redis lets
-- the SET through even at maxmemory, so a worker can still come online and drain a queue that filled
-- the memory (a liveness key is a few dozen bytes).
redis.call('pexpire', KEYS[1], ARGV[1])
redis.call('set', KEYS[1], '1', 'PX', ARGV[1])
redis.pcall('zadd', KEYS[2], ARGV[2], ARGV[3] or KEYS[1])
return 1
