-- track_read: a task's record, with who holds it now, in one call.
-- KEYS[1]  the record: delayed_task:ID (go-delayed layout) or {N}_task:ID (cluster layout)
-- KEYS[2]  cluster layout only: {N}_processing, the queue's hash worker id -> task bytes (HGETALL)
-- ARGV[1]  cluster layout only: the prefix of the queue's liveness keys ({N}_alive:)
-- Returns  {} when unknown; {the record} when settled by a worker or the sweeper (a string, see
--          _settle.lua); else (a hash: pending, cancelled before it ran, or settled by an earlier
--          version; or a plain .delay()'s pending string, _pending.lua) {field, value, ...} as HGETALL
--          gives them, plus "hw" (the worker holding the task bytes in N_processing) and "hl" ("1" if
--          that worker's liveness key exists)
-- In go-delayed's layout any queue's tracker reads any record: N_processing is found from the record's
-- queue, and a worker's liveness key is its id (keys not declared: single Redis only). In the cluster
-- layout a record is read in its queue's slot, where both are declared, except the holder's liveness key,
-- known only once N_processing is read: it is in the same slot, which Redis Cluster accepts.
local fields = redis.pcall('hgetall', KEYS[1])
if fields.err then
    -- Not a hash: one string, pending (a plain .delay()'s, _pending.lua: read on as the hash of the same
    -- fields) or settled (_settle.lua: returned alone); {} for a foreign key.
    local value = redis.pcall('get', KEYS[1])
    if type(value) ~= 'string' then
        return {}
    end
    local pending = pending_fields(value)
    if not pending then
        return {value}
    end
    fields = {'s', pending.s, 'en', pending.en, 'q', pending.q, 'fn', pending.fn, 't', pending.t}
end
if #fields == 0 then
    return fields
end
local record = {}
for i = 1, #fields, 2 do
    record[fields[i]] = fields[i + 1]
end
if record['t'] and record['q'] then
    local held = redis.call('hgetall', KEYS[2] or (record['q'] .. '_processing'))
    local alive = ARGV[1] or ''
    for i = 1, #held, 2 do
        if held[i + 1] == record['t'] then
            fields[#fields + 1] = 'hw'
            fields[#fields + 1] = held[i]
            fields[#fields + 1] = 'hl'
            fields[#fields + 1] = tostring(redis.call('exists', alive .. held[i]))
            break
        end
    end
end
fields[#fields + 1] = 'now'
fields[#fields + 1] = server_ms()
return fields
