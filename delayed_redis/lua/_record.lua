-- record: a retried task's record (the composed requeue script of tracking.py); reading a record's state
-- is _record_state.lua's, the final record _settle.lua's. pcall throughout: at maxmemory, or with a
-- foreign key of another type, only the record is lost, never the task.

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
    if kept.err then  -- a plain .delay()'s pending string (_pending.lua); else settled, or foreign: left
        local value = redis.pcall('get', key)
        local pending = type(value) == 'string' and pending_fields(value)
        if not pending then
            return
        end
        kept = {pending.q, pending.fn, pending.en}  -- in KEPT_FIELDS' order
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
        announce_end(key)
    end
end
