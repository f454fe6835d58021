-- track_mark: finish the record of a task settled outside a worker (a poison task the sweeper buried).
-- KEYS[1]  delayed_task:ID, or {N}_task:ID in the cluster layout
-- ARGV     field1, value1, ..., fieldN, valueN, TTL in ms, N (as track_finish_args.lua takes them)
-- Returns  1 when written; 0 when the record is gone or already finished (a later run settled it)
local track_count = tonumber(table.remove(ARGV))
local track_ttl = table.remove(ARGV)
local s = redis.call('hget', KEYS[1], 's')
if s ~= 'queued' and s ~= 'scheduled' and s ~= 'failed' then
    return 0
end
redis.call('hdel', KEYS[1], 't', 'm', 'due')
redis.call('hset', KEYS[1], 'fi', server_ms(), unpack(ARGV, 1, 2 * track_count))
redis.call('pexpire', KEYS[1], track_ttl)
announce_end(KEYS[1])
return 1
