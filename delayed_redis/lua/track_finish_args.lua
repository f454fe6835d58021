-- track_finish (1/2), put before a consumer script: takes the tracking arguments off the END of KEYS and
-- ARGV, so that the script below sees exactly its own. See track_finish_write.lua for the write.
-- KEYS[#KEYS]  delayed_task:ID, or {N}_task:ID in the cluster layout (the record, also the channel waiters
--               listen on)
-- ARGV tail    field1, value1, ..., fieldN, valueN, TTL in ms, N
local track_key = table.remove(KEYS)
local track_count = tonumber(table.remove(ARGV))
local track_ttl = table.remove(ARGV)
local track_fields = {}
for _ = 1, track_count do
    local value = table.remove(ARGV)
    local name = table.remove(ARGV)
    track_fields[#track_fields + 1] = name
    track_fields[#track_fields + 1] = value
end
local function consumer_script()
