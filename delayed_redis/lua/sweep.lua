-- sweep: requeue the tasks of dead workers, set poison tasks aside, make notifications match the queue.
-- Fixes three bugs of go-delayed's script (WIRE-FORMAT.md section 7): it could return negative counts
-- and never removed surplus notifications; it failed past 8000 notifications (one LPUSH with every
-- argument unpacked at once); and a task that killed its worker was requeued forever.
--
-- KEYS[1]  N             list of task bytes (LLEN, RPUSH)
-- KEYS[2]  N_noti        list of notifications (LLEN, RPUSH, LPUSH, LTRIM, DEL)
-- KEYS[3]  N_processing  hash worker_id -> task bytes (HGET, HDEL; the caller HSCANs it)
-- KEYS[4]  N_poison      list of poison tasks waiting for their dead letter (RPUSH, LRANGE)
-- KEYS[5]  N_recoveries  hash sha1(task) -> times recovered (HINCRBY, HDEL, EXPIRE)
-- KEYS[6]  N_workers     sorted set worker_id -> last keep-alive, unix ms (ZRANGEBYSCORE, ZREM)
-- KEYS[7]  N_dead        list of JSON dead letters: only its type is checked, so that no task is set
--                        aside as poison when bury.lua could not store its letter
-- other    <worker_id>   go-delayed's layout: each worker id listed in ARGV[6..] is its own liveness key
--                        (GET), in the root keyspace (undeclared: the ids are only known once N_processing
--                        is read)
-- KEYS[8..] cluster layout: the liveness keys ({N}_alive:<id>, GET) of the worker ids ARGV[6..], in the
--          same order, so that every key the script touches is declared
-- ARGV[1]  max recoveries: a task lost once more after this many recoveries is dead-lettered; "0"
--          disables the cap
-- ARGV[2]  forget N_workers entries not refreshed since this unix ms
-- ARGV[3]  how many N_poison entries to return at most
-- ARGV[4]  notifications added or removed at most in this call
-- ARGV[5]  "last" for the last call of a sweep (N_poison is returned), else ""
-- ARGV[6..] worker ids whose N_processing entries to look at (the caller read them with HSCAN)
-- Returns  {requeued, poisoned, notifications added (negative: surplus removed),
--           worker ids of entries skipped because their liveness key is not a string,
--           more (1: call again: the notification fix or the registry cleanup is unfinished),
--           the first ARGV[3] entries of N_poison in the "last" call, else {}}
--
-- A sweep is a series of calls, each atomic and bounded, so that a queue held by tens of thousands of
-- workers never blocks Redis for long: the caller walks N_processing with HSCAN and hands each step's
-- worker ids to one call. A call reads each listed entry again (it may have changed since the HSCAN),
-- and requeues a dead worker's task together with its notification, so nothing waits for a later call;
-- a sweeper killed between calls leaves every task in a consistent place, and the next sweep walks the
-- hash again. An entry added after its part of the hash was walked waits for the next sweep.
-- Each call also closes up to ARGV[4] of the difference between N and N_noti, and forgets up to 500
-- stale N_workers entries.
-- A poison task moves from N_processing to N_poison here, atomically; the sweeper then writes its
-- dead letter (built by pydelayed's core) with bury.lua, which removes it from N_poison in the same
-- step. A sweeper killed in between leaves it in N_poison, and the next sweep returns it again. Each
-- N_poison entry is "<length of worker id> <times lost> <worker id><task bytes>".
local REGISTRY_BATCH = 500
local cap = tonumber(ARGV[1])
local fix_budget = tonumber(ARGV[4])
local bad = wrong_type(KEYS[1], 'list', KEYS[2], 'list', KEYS[3], 'hash', KEYS[4], 'list',
                       KEYS[5], 'hash', KEYS[6], 'zset', KEYS[7], 'list')
if bad then
    return redis.error_reply(bad)
end
local requeued, poisoned, skipped = 0, 0, {}
for i = 6, #ARGV do
    local worker_id = ARGV[i]
    local task = redis.call('hget', KEYS[3], worker_id)
    local alive = task and redis.pcall('get', KEYS[i + 2] or worker_id)
    if not task then
        -- released (or swept by someone else) since the caller listed it
    elseif type(alive) == 'table' and alive.err then
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
        -- The new place first (the queue with its notification, or the poison list), the release last.
        if cap > 0 and lost > cap then
            redis.call('rpush', KEYS[4], #worker_id .. ' ' .. lost .. ' ' .. worker_id .. task)
            redis.call('hdel', KEYS[5], redis.sha1hex(task))
            poisoned = poisoned + 1
        else
            redis.call('rpush', KEYS[1], task)
            redis.call('rpush', KEYS[2], '1')
            requeued = requeued + 1
        end
        redis.call('hdel', KEYS[3], worker_id)
    end
end
local more = false
local missing = redis.call('llen', KEYS[1]) - redis.call('llen', KEYS[2])
local fixed = math.max(-fix_budget, math.min(fix_budget, missing))
if missing ~= fixed then
    more = true
end
if fixed > 0 then
    for first = 1, fixed, 1000 do
        local ones = {}
        for i = first, math.min(first + 999, fixed) do ones[#ones + 1] = '1' end
        redis.call('lpush', KEYS[2], unpack(ones))
    end
elseif fixed < 0 then
    local left = redis.call('llen', KEYS[2]) + fixed
    if left == 0 then
        redis.call('del', KEYS[2])
    else
        redis.call('ltrim', KEYS[2], 0, left - 1)
    end
end
local stale = redis.call('zrangebyscore', KEYS[6], '-inf', ARGV[2], 'LIMIT', 0, REGISTRY_BATCH)
if #stale > 0 then
    redis.call('zrem', KEYS[6], unpack(stale))
    more = more or #stale == REGISTRY_BATCH
end
local poison = {}
if ARGV[5] == 'last' then
    poison = redis.call('lrange', KEYS[4], 0, tonumber(ARGV[3]) - 1)
end
return {requeued, poisoned, fixed, skipped, more and 1 or 0, poison}
