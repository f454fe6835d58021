-- record: writing a tracked task's record once the call that settles the task has run, shared by
-- track_finish_write.lua (after one consumer script) and release_take_batch.lua (for each tracked task
-- of a prefetch batch). pcall throughout: at maxmemory, or with a foreign key of another type, only the
-- record is lost, never the task.
--
-- A record that held the task bytes (over 64 bytes, Redis's limit for the compact listpack encoding of a
-- hash) stays a hashtable once they are dropped: about 820 bytes for a finished no-op task, against about
-- 210 written anew when every value fits (docs/benchmarks.md, Redis memory). So it is written anew then,
-- before its TTL is set again.
local function compact(key)
    local encoding = redis.pcall('object', 'encoding', key)
    if encoding == 'listpack' or encoding == 'ziplist' then
        return
    end
    local fields = redis.pcall('hgetall', key)
    if type(fields) ~= 'table' or fields.err or #fields == 0 or #fields > 64 then
        return
    end
    for i = 2, #fields, 2 do
        if #fields[i] > 64 then
            return
        end
    end
    redis.pcall('del', key)
    redis.pcall('hset', key, unpack(fields))
end

-- Drop the queued-task fields, write `fields` (a flat name, value list) and the finish time, then set the
-- TTL (ms) and announce the end on the record's channel.
local function finish_record(key, ttl, fields)
    redis.pcall('hdel', key, 't', 'm', 'due')
    local written = redis.pcall('hset', key, 'fi', server_ms(), unpack(fields))
    if type(written) ~= 'table' then
        compact(key)
        redis.pcall('pexpire', key, ttl)
        redis.pcall('publish', key, 'done')
    end
end
