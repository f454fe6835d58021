
end
-- track_finish (2/2): the consumer script ran first (whatever the record's fate, the task is settled);
-- then the record. pcall: at maxmemory, or with a foreign key of another type, only the record is lost.
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

local reply = consumer_script()
redis.pcall('hdel', track_key, 't', 'm', 'due')
local written = redis.pcall('hset', track_key, 'fi', server_ms(), unpack(track_fields))
if type(written) ~= 'table' then
    compact(track_key)
    redis.pcall('pexpire', track_key, track_ttl)
    redis.pcall('publish', track_key, 'done')
end
return reply
