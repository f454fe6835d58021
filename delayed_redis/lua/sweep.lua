-- sweep: requeue the tasks of dead workers and make notifications match the queue again.
-- Fixes three bugs of go-delayed's script (WIRE-FORMAT.md section 7): it could return negative counts
-- and never removed surplus notifications; it failed past 8000 notifications (one LPUSH with every
-- argument unpacked at once); and a task that killed its worker was requeued forever.
--
-- KEYS[1]  N             list of task bytes (LLEN, RPUSH)
-- KEYS[2]  N_noti        list of notifications (LLEN, LPUSH, LTRIM, DEL)
-- KEYS[3]  N_processing  hash worker_id -> task bytes (HGETALL, HDEL)
-- KEYS[4]  N_dead        list of JSON dead letters (LPUSH, LTRIM)
-- KEYS[5]  N_recoveries  hash sha1(task) -> times recovered (HINCRBY, HDEL, EXPIRE)
-- KEYS[6]  N_workers     sorted set worker_id -> last keep-alive, unix ms (ZREMRANGEBYSCORE)
-- other    <worker_id>   liveness key of each worker holding a task (GET), in the root keyspace
-- ARGV[1]  max recoveries: a task recovered more often is dead-lettered; "0" disables the cap
-- ARGV[2]  now, unix seconds (for dead-letter entries)
-- ARGV[3]  how many dead letters to keep
-- ARGV[4]  the queue name (for dead-letter entries)
-- ARGV[5]  forget N_workers entries not refreshed since this unix ms
-- Returns  {requeued, poisoned, notifications added (negative: surplus removed)}
local cap = tonumber(ARGV[1])
local requeued, poisoned = 0, 0
local held = redis.call('hgetall', KEYS[3])
for i = 1, #held, 2 do
    local worker_id, task = held[i], held[i + 1]
    if not redis.call('get', worker_id) then
        redis.call('hdel', KEYS[3], worker_id)
        local recovered = 0
        if cap > 0 then
            recovered = redis.call('hincrby', KEYS[5], redis.sha1hex(task), 1)
            redis.call('expire', KEYS[5], 604800)
        end
        if cap > 0 and recovered > cap then
            redis.call('hdel', KEYS[5], redis.sha1hex(task))
            local hex = string.gsub(task, '.', function(c) return string.format('%02x', string.byte(c)) end)
            redis.call('lpush', KEYS[4], cjson.encode({
                task = hex, reason = 'poison', queue = ARGV[4], worker = worker_id,
                attempts = recovered, time = tonumber(ARGV[2]),
                error = 'its worker died while running it ' .. recovered .. ' times',
            }))
            redis.call('ltrim', KEYS[4], 0, tonumber(ARGV[3]) - 1)
            poisoned = poisoned + 1
        else
            redis.call('rpush', KEYS[1], task)
            requeued = requeued + 1
        end
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
    local keep = redis.call('llen', KEYS[1])
    if keep == 0 then
        redis.call('del', KEYS[2])
    else
        redis.call('ltrim', KEYS[2], 0, keep - 1)
    end
end
redis.call('zremrangebyscore', KEYS[6], '-inf', ARGV[5])
return {requeued, poisoned, missing}
