-- enqueue: append tasks to a queue with one notification each, atomically.
-- (go-delayed sends two un-atomic RPUSHes; a producer dying between them left a task without a
-- notification until the next sweep. Here both happen or neither.)
--
-- KEYS[1]  N        list of task bytes (RPUSH: FIFO, like go-delayed)
-- KEYS[2]  N_noti   list of "1", one per task a worker may take (RPUSH)
-- ARGV     the task bytes, one per argument
-- Returns  the number of tasks added
local count = #ARGV
for first = 1, count, 1000 do
    local last = math.min(first + 999, count)
    redis.call('rpush', KEYS[1], unpack(ARGV, first, last))
    local ones = {}
    for i = first, last do ones[#ones + 1] = '1' end
    redis.call('rpush', KEYS[2], unpack(ones))
end
return count
