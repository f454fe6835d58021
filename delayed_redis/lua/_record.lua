-- record: writing a tracked task's record once the call that settles the task has run, shared by
-- track_finish_write.lua (after one consumer script) and release_take_batch.lua (for each tracked task
-- of a prefetch batch). pcall throughout: at maxmemory, or with a foreign key of another type, only the
-- record is lost, never the task.

-- The fields of the enqueue that a settled record keeps: queue, function, enqueue time.
local KEPT_FIELDS = {'q', 'fn', 'en'}

-- Write the record anew: the kept fields, `fields` (a flat name, value list: the settle's own) and the
-- finish time; then set its TTL (ms) and announce the end on the record's channel.
--
-- Anew rather than edited: a hash that ever held a value over 64 bytes (the queued task's bytes, a
-- scheduled member, an earlier attempt's traceback) keeps Redis's big hashtable encoding after the value
-- goes, about 820 bytes for a finished no-op task against about 210 for one written anew, in the compact
-- listpack encoding (docs/benchmarks.md, Redis memory). HMGET, DEL and HSET cost no more calls than
-- deleting the queued fields and checking the encoding did, and fewer than compacting afterwards. Fields
-- of earlier attempts (their error) go too: the record says how the task ended.
local function finish_record(key, ttl, fields)
    local kept = redis.pcall('hmget', key, unpack(KEPT_FIELDS))
    if kept.err then
        return  -- a key of another type, written by another program: left as it is
    end
    local record = {'fi', server_ms()}
    for i, name in ipairs(KEPT_FIELDS) do
        if kept[i] then
            record[#record + 1] = name
            record[#record + 1] = kept[i]
        end
    end
    for i = 1, #fields do
        record[#record + 1] = fields[i]
    end
    redis.pcall('del', key)
    local written = redis.pcall('hset', key, unpack(record))
    if type(written) ~= 'table' then
        redis.pcall('pexpire', key, ttl)
        announce_end(key)
    end
end
