
end
-- track_settle (2/2): the consumer script ran first (whatever the record's fate, the task is settled);
-- then the record (settle_record, in _settle.lua).
local reply = consumer_script()
settle_record(track_key, track_ttl, track_rest)
return reply
