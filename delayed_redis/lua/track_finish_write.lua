
end
-- track_finish (2/2): the consumer script ran first (whatever the record's fate, the task is settled);
-- then the record (finish_record, in _record.lua).
local reply = consumer_script()
finish_record(track_key, track_ttl, track_fields)
return reply
