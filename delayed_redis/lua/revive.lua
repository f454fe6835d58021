-- revive: take one entry out of the dead-letter list and enqueue its task, atomically; nothing happens
-- if the entry is already gone (two operators requeueing the same letter enqueue it once).
--
-- KEYS[1]  N_dead  list of JSON dead letters (LREM)
-- KEYS[2]  N       list of task bytes (RPUSH)
-- KEYS[3]  N_noti  list of notifications (RPUSH)
-- ARGV[1]  the entry, byte for byte
-- ARGV[2]  the task bytes to enqueue, or "" to only remove the entry
-- Returns  1 if the entry was found, else 0
-- LREM must come first (it says whether the entry is still there), so the types are checked before it:
-- the pushes after it cannot fail on a key of another type.
local bad = wrong_type(KEYS[1], 'list', KEYS[2], 'list', KEYS[3], 'list')
if bad then
    return redis.error_reply(bad)
end
if redis.call('lrem', KEYS[1], 1, ARGV[1]) == 0 then
    return 0
end
if ARGV[2] ~= '' then
    redis.call('rpush', KEYS[2], ARGV[2])
    redis.call('rpush', KEYS[3], '1')
end
return 1
