
end
-- track_finish (2/2): the consumer script ran first (whatever the record's fate, the task is settled);
-- then the record. pcall: at maxmemory, or with a foreign key of another type, only the record is lost.
local reply = consumer_script()
redis.pcall('hdel', track_key, 't', 'm', 'due')
local written = redis.pcall('hset', track_key, 'fi', server_ms(), unpack(track_fields))
if type(written) ~= 'table' then
    redis.pcall('pexpire', track_key, track_ttl)
    redis.pcall('publish', track_key, 'done')
end
return reply
