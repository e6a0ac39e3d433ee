-- issue_index: group a dead letter written before issues existed.
--
-- KEYS[1]  <p>:dead
-- ARGV[1]  dead-letter id    ARGV[2] key prefix (<p>:)
-- ARGV[3]  fingerprint       ARGV[4] title
--
-- Maintenance read the record a moment ago; it may have been retried or
-- dropped since, and is grouped only if it is still there. Returns 1 if
-- it was grouped, else 0.
-- @include issues
local record = redis.call('HGET', KEYS[1], ARGV[1])
if not record then
  return 0
end
local letter = cjson.decode(record)
if type(letter['fingerprint']) == 'string' and letter['fingerprint'] ~= '' then
  return 0
end
letter['fingerprint'] = ARGV[3]
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(letter))
issue_add(ARGV[2], ARGV[3], ARGV[4], letter['handler'], ARGV[1], letter['subject'],
          tonumber(letter['dead_at']), letter['parked'] == true)
return 1
