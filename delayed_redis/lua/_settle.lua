-- settle: writing the final record of a tracked task settled for good, shared by the composed consumer
-- scripts of tracking.py (release, dead letter), track_mark.lua and release_take_batch.lua. Apart from
-- _record.lua (a retry's record) and _record_state.lua (reading a record's state) so that the hot path's
-- script defines only the functions it calls: Lua makes every function of a script anew on each call.
-- pcall throughout: at maxmemory, or with a foreign key of another type, only the record is lost, never
-- the task.

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
        announce_end(key)
    end
end
