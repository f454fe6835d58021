-- sweep: requeue the tasks of dead workers, set poison tasks aside, make notifications match the queue.
-- Fixes three bugs of go-delayed's script (WIRE-FORMAT.md section 7): it could return negative counts
-- and never removed surplus notifications; it failed past 8000 notifications (one LPUSH with every
-- argument unpacked at once); and a task that killed its worker was requeued forever.
--
-- KEYS[1]  N             list of task bytes (LLEN, RPUSH)
-- KEYS[2]  N_noti        list of notifications (LLEN, LPUSH, LTRIM, DEL)
-- KEYS[3]  N_processing  hash worker_id -> task bytes (HGETALL, HDEL)
-- KEYS[4]  N_poison      list of poison tasks waiting for their dead letter (RPUSH, LRANGE)
-- KEYS[5]  N_recoveries  hash sha1(task) -> times recovered (HINCRBY, HDEL, EXPIRE)
-- KEYS[6]  N_workers     sorted set worker_id -> last keep-alive, unix ms (ZREMRANGEBYSCORE)
-- KEYS[7]  N_dead        list of JSON dead letters: only its type is checked, so that no task is set
--                        aside as poison when bury.lua could not store its letter
-- other    <worker_id>   liveness key of each worker holding a task (GET), in the root keyspace, in
--                        go-delayed's layout (undeclared: the ids are only known once N_processing is read)
-- KEYS[8..] cluster layout: the liveness keys ({N}_alive:<id>, GET) of the worker ids ARGV[5..], in the
--          same order, which the caller read from N_processing just before; an entry of an id not listed
--          (a task taken since) is left to the next sweep. So every key the script touches is declared.
-- ARGV[1]  max recoveries: a task lost once more after this many recoveries is dead-lettered; "0"
--          disables the cap
-- ARGV[2]  forget N_workers entries not refreshed since this unix ms
-- ARGV[3]  how many N_poison entries to return at most
-- ARGV[4]  "listed" in the cluster layout (liveness keys in KEYS[8..]); absent in go-delayed's
-- Returns  {requeued, poisoned, notifications added (negative: surplus removed),
--           worker ids of entries skipped because their liveness key is not a string,
--           the first ARGV[3] entries of N_poison}
-- A poison task moves from N_processing to N_poison here, atomically; the sweeper then writes its
-- dead letter (built by pydelayed's core) with bury.lua, which removes it from N_poison in the same
-- step. A sweeper killed in between leaves it in N_poison, and the next sweep returns it again. Each
-- N_poison entry is "<length of worker id> <times lost> <worker id><task bytes>".
local cap = tonumber(ARGV[1])
local bad = wrong_type(KEYS[1], 'list', KEYS[2], 'list', KEYS[3], 'hash', KEYS[4], 'list',
                       KEYS[5], 'hash', KEYS[6], 'zset', KEYS[7], 'list')
if bad then
    return redis.error_reply(bad)
end
local requeued, poisoned, skipped = 0, 0, {}
local listed = ARGV[4] == 'listed'
local liveness_key = {}
for i = 8, #KEYS do
    liveness_key[ARGV[i - 3]] = KEYS[i]
end
local held = redis.call('hgetall', KEYS[3])
for i = 1, #held, 2 do
    local worker_id, task = held[i], held[i + 1]
    local alive_key = worker_id
    if listed then
        alive_key = liveness_key[worker_id]
    end
    local alive = 'not listed: left to the next sweep'
    if alive_key then
        alive = redis.pcall('get', alive_key)
    end
    if type(alive) == 'table' and alive.err then
        -- Another program's key (not a string) has this worker's name: whether the worker lives is
        -- unknown, so the task stays where it is, and the entry is reported instead of failing the sweep
        -- of the whole queue.
        skipped[#skipped + 1] = worker_id
    elseif not alive then
        local lost = 0
        if cap > 0 then
            lost = redis.call('hincrby', KEYS[5], redis.sha1hex(task), 1)
            redis.call('expire', KEYS[5], 604800)
        end
        -- The new place first (the queue, or the poison list), the release last.
        if cap > 0 and lost > cap then
            redis.call('rpush', KEYS[4], #worker_id .. ' ' .. lost .. ' ' .. worker_id .. task)
            redis.call('hdel', KEYS[5], redis.sha1hex(task))
            poisoned = poisoned + 1
        else
            redis.call('rpush', KEYS[1], task)
            requeued = requeued + 1
        end
        redis.call('hdel', KEYS[3], worker_id)
    end
end
local missing = redis.call('llen', KEYS[1]) - redis.call('llen', KEYS[2])
if missing > 0 then
    for first = 1, missing, 1000 do
        local ones = {}
        for i = first, math.min(first + 999, missing) do ones[#ones + 1] = '1' end
        redis.call('lpush', KEYS[2], unpack(ones))
    end
elseif missing < 0 then
    local left = redis.call('llen', KEYS[1])
    if left == 0 then
        redis.call('del', KEYS[2])
    else
        redis.call('ltrim', KEYS[2], 0, left - 1)
    end
end
redis.call('zremrangebyscore', KEYS[6], '-inf', ARGV[2])
return {requeued, poisoned, missing, skipped, redis.call('lrange', KEYS[4], 0, tonumber(ARGV[3]) - 1)}
