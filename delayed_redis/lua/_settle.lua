-- settle: writing the final record of a tracked task settled for good, shared by the composed consumer
-- scripts of tracking.py (release, dead letter), track_mark.lua and release_take_batch.lua. Apart from
-- _record.lua (a retry's record) and _record_state.lua (reading a record's state) so that the hot path's
-- script defines only the functions it calls: Lua makes every function of a script anew on each call.
-- pcall throughout: at maxmemory, or with a foreign key of another type, only the record is lost, never
-- the task.

-- The enqueue time (ms, as text) of the record at `key`: the head of a string (a plain .delay()'s pending
-- record, _pending.lua, or a settled one), or a pending hash's field "en"; "" when there is none. nil for
-- a key of another type (another program's). GET first: most records a worker settles are strings.
local function enqueued_of(key)
    local value = redis.pcall('get', key)
    if type(value) == 'string' then
        return string.match(value, '^(%d*) ') or ''
    elseif not value then
        return ''
    end
    local en = redis.pcall('hget', key, 'en')  -- not a string: a pending hash, or foreign
    if type(en) == 'string' then
        return en
    elseif not en then
        return ''
    end
    return nil
end

-- A task's final record (succeeded, dead, cancelled): ONE string, "<enqueued ms> <status>\n" followed by
-- a msgpack map of the other fields (tracking.py's settled_record reads it). `rest` is that string from
-- the space on, as the worker sent it; the enqueue time is the only fact taken from the pending record.
-- Then the TTL (ms) and the announcement on the record's channel.
--
-- One SET instead of a hash written field by field: the settle is the hot path of a busy tracked slot,
-- and SET ... PX replaces the pending record, string or hash (its task bytes included), in one command,
-- with no DEL, HSET or PEXPIRE; a string of ~120 bytes also takes less memory than the smallest hash of
-- the same fields.
-- Lua only ever reads the head (status, enqueue time): the map is the worker's and the reader's.
local function settle_record(key, ttl, rest)
    local en = enqueued_of(key)
    if not en then
        return  -- a key of another type, written by another program: left as it is
    end
    if not redis.pcall('set', key, en .. rest, 'px', ttl).err then  -- a status reply: {ok = 'OK'}
        announce_end(key)
    end
end
