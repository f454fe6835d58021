-- enqueue_bounded: append tasks only if the queue then holds at most ARGV[1] of them, atomically
-- (the length check and the push in one script, so two producers cannot both take the last place).
-- A batch that does not fit is refused whole.
--
-- KEYS[1]  N        list of task bytes
-- KEYS[2]  N_noti   list of "1", one per task
-- KEYS[3]  N_bound  string: the bound of the last bounded enqueue, for `delayed info`
-- ARGV[1]  the bound; ARGV[2..] the task bytes
-- Returns  the queue's length after the push, or -1 - length when the batch was refused
local bound = tonumber(ARGV[1])
local length = redis.call('llen', KEYS[1])
local count = #ARGV - 1
if length + count > bound then
    return -1 - length
end
-- written only when it changes: a read costs less than a write replicated on every enqueue
if redis.call('get', KEYS[3]) ~= ARGV[1] then redis.call('set', KEYS[3], ARGV[1]) end
for first = 2, #ARGV, 1000 do
    local last = math.min(first + 999, #ARGV)
    redis.call('rpush', KEYS[1], unpack(ARGV, first, last))
    local ones = {}
    for i = first, last do ones[#ones + 1] = '1' end
    redis.call('rpush', KEYS[2], unpack(ones))
end
return length + count
