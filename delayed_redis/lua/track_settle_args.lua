-- track_settle (1/2), put before a consumer script whose call settles a tracked task for good (release,
-- dead letter): takes the tracking arguments off the END of KEYS and ARGV, so that the script below sees
-- exactly its own. See track_settle_write.lua for the write.
-- KEYS[#KEYS]  delayed_task:ID (the record, also the channel waiters listen on)
-- ARGV tail    TTL in ms, then the record from the space after its enqueue time on:
--              " <status>\n<msgpack map of the other fields>" (settle_record in _settle.lua)
local track_key = table.remove(KEYS)
local track_rest = table.remove(ARGV)
local track_ttl = table.remove(ARGV)
local function consumer_script()
