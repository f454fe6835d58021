-- track_submit_one: enqueue one tracked task with a random id, at once, and write its record: what a plain
-- .delay() sends. track_submit.lua does the same for any batch, delay or uniqueness rule; this script is
-- its common case with nothing else to decide, so Redis converts and Lua reads fewer arguments (each one
-- costs a script call as much as a small command does).
--
-- KEYS[1]  N               list of task bytes (RPUSH)
-- KEYS[2]  N_noti          list of notifications (RPUSH)
-- KEYS[3]  delayed_task:ID the task's record (SET ... PX), one string (see _pending.lua)
-- ARGV[1]  the task bytes
-- ARGV[2]  its function path
-- ARGV[3]  the producer's unix time in ms (the record's "enqueued")
-- ARGV[4]  the record's TTL (ms) while pending
-- Returns  1
--
-- Safe by its order, as track_submit.lua: the RPUSH first, the record last. The record is one string
-- rather than track_submit.lua's hash: one command instead of HSET and PEXPIRE, and a task over 64 bytes
-- (most are: the path alone is often half of that) takes a hash out of Redis's compact encoding, which
-- made a waiting task's record about 600 bytes against about half that as a string. The id is random (the
-- tracker sends an id of a caller's through track_submit.lua, which refuses one in use), so the key is
-- new and SET overwrites nothing.
redis.call('rpush', KEYS[1], ARGV[1])
redis.call('rpush', KEYS[2], '1')
redis.call('set', KEYS[3], ARGV[3] .. ' queued\n' .. #KEYS[1] .. ' ' .. #ARGV[2] .. '\n' .. KEYS[1] .. ARGV[2] .. ARGV[1],
           'px', ARGV[4])
return 1
