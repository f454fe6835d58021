-- track_mark: settle the record of a task settled outside a worker (a poison task the sweeper buried).
-- KEYS[1]  delayed_task:ID, or {N}_task:ID in the cluster layout
-- ARGV[1]  the record's TTL in ms
-- ARGV[2]  the record from the space after its enqueue time on (settle_record in _settle.lua)
-- Returns  1 when written; 0 when the record is gone or already finished (a later run settled it)
local s = record_state(KEYS[1])
if s ~= 'queued' and s ~= 'scheduled' and s ~= 'failed' then
    return 0
end
settle_record(KEYS[1], ARGV[1], ARGV[2])
return 1
