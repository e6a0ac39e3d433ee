-- dead_forget: a dead letter's event was routed again (a retry): forget the
-- letter, and the hold it had on its event (the retry's lane entry holds it now).
--
-- KEYS[1]  <p>:dead     KEYS[2]  <p>:dead:ids     KEYS[3]  <p>:ev:<event key>
-- ARGV[1]  dead-letter id      ARGV[2]  key prefix (<p>:)
--
-- Run inside the MULTI/EXEC that routes the event again. Returns 1, or 0 if
-- there was no such id.
-- @include issues
local record = redis.call('HGET', KEYS[1], ARGV[1])
if not record then
  return 0
end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HINCRBY', KEYS[3], 'pending', -1)
issue_remove(ARGV[2], record)
return 1
