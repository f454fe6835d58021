-- track_submit_one: enqueue one tracked task with a random id, at once, and write its record: what a plain
-- .delay() sends. track_submit.lua does the same for any batch, delay or uniqueness rule; this script is
-- its common case with nothing else to decide, so Redis converts and Lua reads fewer arguments (each one
-- costs a script call as much as a small command does).
--
-- KEYS[1]  N               list of task bytes (RPUSH)
-- KEYS[2]  N_noti          list of notifications (RPUSH)
-- KEYS[3]  delayed_task:ID hash: the task's record (HSET, PEXPIRE)
-- ARGV[1]  the task bytes
-- ARGV[2]  its function path
-- ARGV[3]  the producer's unix time in ms (the record's "enqueued")
-- ARGV[4]  the record's TTL (ms) while pending
-- Returns  1
--
-- Safe by its order, as track_submit.lua: the RPUSH first, the record last.
redis.call('rpush', KEYS[1], ARGV[1])
redis.call('rpush', KEYS[2], '1')
redis.call('hset', KEYS[3], 's', 'queued', 'q', KEYS[1], 'fn', ARGV[2], 't', ARGV[1], 'en', ARGV[3])
redis.call('pexpire', KEYS[3], ARGV[4])
return 1
