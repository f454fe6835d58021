-- record_state: what track_submit.lua and track_mark.lua need to know of a record before they write one.
-- A file of its own because Lua makes every helper a script carries anew on each call.

-- The status and enqueue time (ms, as a number or nil) of the record at `key`, pending or settled; nil
-- when there is no record. A key of another type (neither hash nor string: another program's) fails the
-- script with WRONGTYPE before it writes anything, as reading a record always did: its callers would
-- otherwise take it for no record, and a new run of the id would delete that program's data.
local function record_state(key)
    local s = redis.pcall('hmget', key, 's', 'en')
    if not s.err then
        return s[1], tonumber(s[2])
    end
    local settled = redis.call('get', key)
    if not settled then
        return nil
    end
    local en, status = string.match(settled, '^(%d*) (%a+)\n')
    return status, tonumber(en)
end
