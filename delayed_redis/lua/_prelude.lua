-- prelude: helpers that scripts.py puts before every script.
--
-- Redis does not roll a script back when one of its commands fails: the writes before the failure stay.
-- So a script checks the types of the keys it writes before its first write (wrong_type), or orders its
-- writes so that a failing command can never lose a task (the new place first, the old one last).
--
-- At maxmemory (noeviction), Redis refuses a command that may grow memory only while the script has not
-- written anything yet; it never stops a script halfway. Scripts that must work when memory is full
-- (taking and releasing tasks, keep-alive) therefore start with a write that frees memory or needs none.

-- The first of the (key, type) pairs whose key holds another type, as an error message; false if every
-- key is absent or of its type. It reads each key's length with a command of its type, which fails on
-- another type: unlike TYPE, those commands are in the categories a minimal ACL grants already.
local length_of = {list = 'llen', hash = 'hlen', zset = 'zcard'}
local function wrong_type(...)
    local expected = {...}
    for i = 1, #expected, 2 do
        local reply = redis.pcall(length_of[expected[i + 1]], expected[i])
        if type(reply) == 'table' and reply.err then
            return 'WRONGTYPE key ' .. expected[i] .. ' is not the ' .. expected[i + 1]
                .. ' pydelayed keeps there (does another program write this key?); nothing was changed'
        end
    end
    return false
end

-- The Redis server's clock in unix ms: every due time follows this one clock, whatever the clocks of
-- producers and workers say.
local function server_ms()
    local t = redis.call('time')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end


-- Take the head of the task list `queue` for a slot: move it into processing[id] and return it; nil
-- when the list is empty. LPOP, which frees memory, comes before HSET, so it works at maxmemory; callers
-- read or write `processing` first, so that HSET cannot fail on the key's type once LPOP took the task.
local function take_head(queue, processing, id)
    local task = redis.call('lpop', queue)
    if not task then
        return nil
    end
    redis.call('hset', processing, id, task)
    return task
end

-- Release the tasks processing[id] holds for each id given, which ran to their end; forget their poison
-- counts too, since deaths of earlier workers holding the same bytes say nothing about them any more.
-- Reads (EXISTS, HGET) come before the writes, which only free memory (one HDEL for all the ids). Returns
-- how many ids held a task (now released).
-- redis.sha1hex is missing from some Lua hosts (fakeredis): the poison count then stays, as before.
local function release_held(processing, recoveries, ...)
    if redis.sha1hex and redis.call('exists', recoveries) == 1 then
        for _, id in ipairs({...}) do
            local done = redis.call('hget', processing, id)
            if done then
                redis.call('hdel', recoveries, redis.sha1hex(done))
            end
        end
    end
    return redis.call('hdel', processing, ...)
end

-- Count one task in a queue's N_throughput hash, which the dashboard charts: field 'd:<minute>' for a task
-- done (released), 'f:<minute>' for one dead-lettered; <minute> is unix time // 60 as the caller sends it
-- (the worker's clock: asking Redis for TIME here would double the counter's cost, and a few seconds of
-- skew only moves a count to the next minute of the chart). One HINCRBY inside the script that settles
-- the task, so a busy slot keeps one round trip per task. Best effort (pcall): a counter never fails the
-- release or dead letter it rides on. The first count of a kind in a minute also drops fields that left
-- the 15-minute window and renews the key's TTL, so the hash keeps about 30 fields at most and the
-- counters of a queue that went idle expire on their own.
-- Callers count after their first write: at maxmemory Redis refuses a growing command only before it.
local THROUGHPUT_MINUTES = 15
local function count_minute(key, kind, minute_text)
    local minute = tonumber(minute_text)
    if not minute or redis.pcall('hincrby', key, kind .. minute_text, 1) ~= 1 then
        return
    end
    local fields = redis.pcall('hkeys', key)
    if fields.err then
        return
    end
    for _, field in ipairs(fields) do
        local field_minute = tonumber(string.sub(field, 3))
        if not field_minute or field_minute <= minute - THROUGHPUT_MINUTES then
            redis.pcall('hdel', key, field)
        end
    end
    redis.pcall('pexpire', key, (THROUGHPUT_MINUTES + 1) * 60000)
end

-- Announce the end of a tracked task on its record's channel (the record key itself), best effort. In the
-- cluster layout (a record key starting with its queue's hash tag, "{N}_task:<id>") with SPUBLISH: a
-- shard channel goes only to the nodes serving that slot, where the waiter's SSUBSCRIBE is, while a
-- classic PUBLISH on a Redis Cluster is copied to every node of the cluster over the cluster bus, for
-- every finished task. go-delayed's layout ("delayed_task:<id>") keeps PUBLISH: one Redis, and any
-- version.
local function announce_end(record_key)
    if string.byte(record_key, 1) == 123 then  -- '{'
        redis.pcall('spublish', record_key, 'done')
    else
        redis.pcall('publish', record_key, 'done')
    end
end
