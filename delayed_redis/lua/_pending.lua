-- pending: reading the record a plain .delay() writes while its task waits (track_submit_one.lua): ONE
-- string, "<enqueued ms> queued\n<queue length> <function length>\n" followed by the queue's key, the
-- function path and the task bytes, run together (lengths, not separators: any byte may be in them).
-- Other pending records (scheduled, retried, under an id chosen or derived) are hashes of the same fields;
-- a settled record is "<enqueued ms> <status>\n" and a msgpack map (_settle.lua). A helper of its own,
-- for the scripts that read records: Lua makes every helper a script carries anew on each call.

-- The fields of the pending string `value` as a table (s, en, q, fn, t, as a pending hash has them), or
-- nil when `value` is a settled record.
local function pending_fields(value)
    local en, status, queue_length, func_length, at = string.match(value, '^(%d*) (%a+)\n(%d+) (%d+)\n()')
    if status ~= 'queued' then
        return nil
    end
    local func_at = at + tonumber(queue_length)
    local task_at = func_at + tonumber(func_length)
    return {s = status, en = en, q = string.sub(value, at, func_at - 1), fn = string.sub(value, func_at, task_at - 1),
            t = string.sub(value, task_at)}
end
