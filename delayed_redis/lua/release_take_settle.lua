-- release_take_settle: release_take.lua for a tracked task, with its final record written in the same
-- call (settle_record, _settle.lua). The one-queue release of a busy tracked slot. Other consumer scripts
-- get their record write composed around them (tracking.py's _composed); this one is written out
-- because it runs once per tracked task: the composition's argument shuffling and wrapper function cost
-- about 3,400 of the call's 94,000 instructions inside redis-server.
--
-- KEYS[1..5] as release_take.lua: N, N_noti, N_processing, N_recoveries, N_throughput
-- KEYS[6]    the task's record, delayed_task:ID ({N}_task:ID in the cluster layout), also its channel
-- ARGV[1..3] as release_take.lua: the worker id, "0" (release only) or "1", the current unix minute
-- ARGV[4]    the record's TTL in ms
-- ARGV[5]    the record (settle_record in _settle.lua)
-- Returns    the next task bytes, or nil (as release_take.lua)
--
-- Order: the release first, as release_take.lua (its HDEL frees memory, so at maxmemory the rest still
-- runs); then the record, best effort; then the take.
if release_held(KEYS[3], KEYS[4], ARGV[1]) > 0 then
    count_minute(KEYS[5], 'd:', ARGV[3])
end
settle_record(KEYS[6], ARGV[4], ARGV[5])
if ARGV[2] == '0' or not redis.call('lpop', KEYS[2]) then
    return nil
end
return take_head(KEYS[1], KEYS[3], ARGV[1])
