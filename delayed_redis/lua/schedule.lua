-- schedule: keep tasks aside until they fall due, by the Redis server's clock (a producer's or a
-- worker's clock may be off; the server's is the one clock every party shares).
--
-- KEYS[1]  N_scheduled  sorted set, score = due unix ms, member = 16 hex chars + task bytes (ZADD)
-- ARGV[1]  delay in ms from now
-- ARGV[2..] the members, one per task (16 unique hex chars keep equal tasks apart)
-- Channel  N_scheduled: PUBLISH the due time (server unix ms), so idle workers wake up for it
-- Returns  the number of tasks scheduled
local due = server_ms() + tonumber(ARGV[1])
for first = 2, #ARGV, 1000 do
    local args = {}
    for i = first, math.min(first + 999, #ARGV) do
        args[#args + 1] = due
        args[#args + 1] = ARGV[i]
    end
    redis.call('zadd', KEYS[1], unpack(args))
end
-- pcall: the announcement is a hint (an ACL may forbid PUBLISH; workers then poll); the ZADD is not
redis.pcall('publish', KEYS[1], due)
return #ARGV - 1
