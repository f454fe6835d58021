-- record: writing a tracked task's record once the call that settles or retries the task has run,
-- shared by the composed consumer scripts (tracking.py), track_mark.lua and release_take_batch.lua.
-- pcall throughout: at maxmemory, or with a foreign key of another type, only the record is lost, never
-- the task.

-- The fields of the enqueue that a retried task's record keeps: queue, function, enqueue time.
local KEPT_FIELDS = {'q', 'fn', 'en'}

-- A retried task's record (status "failed"), written anew as a hash: the kept fields and `fields` (a flat
-- name, value list: the retry's own, the new task bytes among them, and the finish time); then its TTL
-- (ms) and the announcement on the record's channel (a waiter reads "failed" and waits on).
--
-- Anew rather than edited: a hash that ever held a value over 64 bytes (the queued task's bytes, a
-- scheduled member, an earlier attempt's traceback) keeps Redis's big hashtable encoding after the value
-- goes. Fields of earlier attempts (their error) go too: the record says how the last attempt ended.
local function finish_record(key, ttl, fields)
    local kept = redis.pcall('hmget', key, unpack(KEPT_FIELDS))
    if kept.err then
        return  -- a key of another type, written by another program: left as it is
    end
    local record = {}
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
        redis.pcall('publish', key, 'done')
    end
end

-- The enqueue time (ms, as text) of the record at `key`: a pending record's field "en", or the head of a
-- settled one; "" when there is none. nil for a key of another type (another program's).
local function enqueued_of(key)
    local en = redis.pcall('hget', key, 'en')
    if type(en) == 'string' then
        return en
    elseif not en then
        return ''
    end
    local settled = redis.pcall('get', key)  -- not a hash: settled already (a string), or foreign
    if type(settled) ~= 'string' then
        return nil
    end
    return string.match(settled, '^(%d*) ') or ''
end

-- A task's final record (succeeded, dead, cancelled): ONE string, "<enqueued ms> <status>\n" followed by
-- a msgpack map of the other fields (tracking.py's settled_record reads it). `rest` is that string from
-- the space on, as the worker sent it; the enqueue time is the only fact taken from the pending record.
-- Then the TTL (ms) and the announcement on the record's channel.
--
-- One SET instead of a hash written field by field: the settle is the hot path of a busy tracked slot,
-- and SET ... PX replaces the pending hash (its task bytes included) in one command, with no DEL, HSET
-- or PEXPIRE; a string of ~120 bytes also takes less memory than the smallest hash of the same fields.
-- Lua only ever reads the head (status, enqueue time): the map is the worker's and the reader's.
local function settle_record(key, ttl, rest)
    local en = enqueued_of(key)
    if not en then
        return  -- a key of another type, written by another program: left as it is
    end
    if not redis.pcall('set', key, en .. rest, 'px', ttl).err then  -- a status reply: {ok = 'OK'}
        redis.pcall('publish', key, 'done')
    end
end

-- The status and enqueue time (ms, as a number or nil) of the record at `key`, pending or settled; nil
-- when there is no record (or a foreign key).
local function record_state(key)
    local s = redis.pcall('hmget', key, 's', 'en')
    if not s.err then
        return s[1], tonumber(s[2])
    end
    local settled = redis.pcall('get', key)
    if type(settled) ~= 'string' then
        return nil
    end
    local en, status = string.match(settled, '^(%d*) (%a+)\n')
    return status, tonumber(en)
end
