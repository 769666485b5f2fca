-- Replaces a live session's record, keeping its creation time; writes nothing when the session
-- is not there (deletion wins) or what is stored is not a record. One round trip.
-- KEYS[1]: the session's key.
-- ARGV[1]: the new record's JSON; ARGV[2]: the 0-based byte offset of its created_at timestamp
-- (20 bytes, YYYY-MM-DDTHH:MM:SSZ); ARGV[3]: when it ends (unix seconds, for EXAT).
-- Returns 1 when written, 0 when not.
local old = redis.call('GET', KEYS[1])
if not old then
  return 0
end
local ok, record = pcall(cjson.decode, old)
if not ok or type(record) ~= 'table' then
  return 0
end
local new = ARGV[1]
local at = tonumber(ARGV[2])
local created = record['created_at']
-- Same length as the new timestamp, so that the record stays within the size already checked.
if type(created) == 'string' and string.match(created, '^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$') then
  new = string.sub(new, 1, at) .. created .. string.sub(new, at + 21)
end
redis.call('SET', KEYS[1], new, 'EXAT', ARGV[3])
return 1
