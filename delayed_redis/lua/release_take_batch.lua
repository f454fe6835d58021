-- release_take_batch: settle and take the tasks of a prefetching slot (--prefetch K) in one call.
-- The slot holds each task under its own worker id, in its own queue's N_processing, exactly as K
-- go-delayed workers would: the sweeper recovers every one of them if the process dies.
--
-- KEYS     five keys per queue the slot serves, highest priority first; for queue j (1-based), at 5j-4 .. 5j:
--   N             list of task bytes (LPOP; LPUSH for a task handed back)
--   N_noti        list of notifications (LPOP; RPUSH for a task handed back)
--   N_processing  hash worker_id -> task bytes (HGET, HDEL, HSET)
--   N_recoveries  hash sha1(task) -> times recovered (EXISTS; HDEL only when it exists)
--   N_throughput  hash of per-minute counters (HINCRBY 'd:<minute>' by the tasks released; see count_minute)
--   then         delayed_task:ID, the record of each tracked task released (settle_record in _settle.lua:
--                GET, or HGET for a pending hash; SET, PUBLISH on the channel of the same name)
-- ARGV[1]  the current unix minute, for the counters
-- ARGV[2]  Q, the number of queues
-- then     D, then D entries, for the tasks that ran to their end, to release: worker id, queue index j,
--          r (0, or the record KEYS[5Q + r] of a tracked task, followed by: its TTL in ms and the record
--          from the space after its enqueue time on, as settle_record takes it)
-- then     U, then U pairs (worker id, queue index j): unstarted tasks, handed back to the FRONT of their
--          queue in the order given (the first pair becomes the head of its queue)
-- then     T, then T worker ids to take tasks under, in order (an id that still holds a task in any of
--          the queues is skipped: never overwritten)
-- Returns  {i1, j1, task1, i2, j2, task2, ...}: the task taken under the i-th id from queue j, in the
--          order taken; {} when no task was ready or none was asked for
--
-- Order, as in release_take: the releases come first, and they only free memory (HDEL), so at maxmemory
-- the hand-backs and takes that follow still run. A hand-back writes the task's new place before it
-- drops the old one, and a take pops before it writes the key that the releases just used. A record is
-- written after its task's release with pcall: at maxmemory only the record is lost, never a task.
--
-- Cost: the releases of one queue are one HDEL and one or two HINCRBY, whatever their number; a take
-- under an id this call released skips the check that the id holds nothing (it cannot: an id holds one
-- task at most, in one queue). A busy slot's batch so costs three commands per task taken.
local minute = ARGV[1]
local queues = tonumber(ARGV[2])

local at = 3
local releasing = {}  -- queue index j -> the ids to release from it
local released = {}   -- id -> true: free in every queue once the releases ran
local records = {}    -- {record key, ttl, record}, written once every release ran
for _ = 1, tonumber(ARGV[at]) do
    local id, j, r = ARGV[at + 1], tonumber(ARGV[at + 2]), tonumber(ARGV[at + 3])
    at = at + 3
    releasing[j] = releasing[j] or {}
    table.insert(releasing[j], id)
    released[id] = true
    if r > 0 then
        table.insert(records, {KEYS[5 * queues + r], ARGV[at + 1], ARGV[at + 2]})
        at = at + 2
    end
end
for j = 1, queues do
    local count = releasing[j] and release_held(KEYS[5 * j - 2], KEYS[5 * j - 1], unpack(releasing[j])) or 0
    if count > 0 then
        count_minute(KEYS[5 * j], 'd:', minute)  -- the first count of a minute also trims the hash
        if count > 1 and tonumber(minute) then
            redis.pcall('hincrby', KEYS[5 * j], 'd:' .. minute, count - 1)
        end
    end
end
for _, record in ipairs(records) do
    settle_record(record[1], record[2], record[3])
end
at = at + 1
local unstarted = tonumber(ARGV[at])
for n = unstarted, 1, -1 do
    local id, j = ARGV[at + 2 * n - 1], 5 * tonumber(ARGV[at + 2 * n])
    local task = redis.call('hget', KEYS[j - 2], id)
    if task then
        redis.call('lpush', KEYS[j - 4], task)
        redis.call('rpush', KEYS[j - 3], '1')
        redis.call('hdel', KEYS[j - 2], id)
    end
end
at = at + 2 * unstarted + 1
local taken = {}
for i = 1, tonumber(ARGV[at]) do
    local id = ARGV[at + i]
    local free = true
    for j = 1, (released[id] and 0 or queues) do
        -- HGET, not HEXISTS: the commands a minimal ACL grants already (doctor_acl.py)
        if redis.call('hget', KEYS[5 * j - 2], id) then
            free = false
            break
        end
    end
    if free then
        local task = nil
        for j = 1, queues do
            -- A notification with no task behind it (a surplus the sweeper will trim) is used up; try
            -- the next queue.
            if redis.call('lpop', KEYS[5 * j - 3]) then
                task = take_head(KEYS[5 * j - 4], KEYS[5 * j - 2], id)
                if task then
                    taken[#taken + 1] = i
                    taken[#taken + 1] = j
                    taken[#taken + 1] = task
                    break
                end
            end
        end
        if not task then
            break
        end
    end
end
return taken
