-- dead_drop: forget a dead letter; its event may then expire.
--
-- KEYS[1]  <p>:dead     KEYS[2]  <p>:dead:ids     KEYS[3]  <p>:ev:<event key>
-- KEYS[4]  <p>:body:<event key>
-- ARGV[1]  dead-letter id      ARGV[2]  retention (s)      ARGV[3]  key prefix (<p>:)
--
-- The dead letter held its event (its `pending` count was not decremented);
-- dropping it releases that hold. Returns 1, or 0 if there was no such id.
-- @include release
-- @include issues
local record = redis.call('HGET', KEYS[1], ARGV[1])
if not record then
  return 0
end
redis.call('HDEL', KEYS[1], ARGV[1])
issue_remove(ARGV[3], record)
redis.call('ZREM', KEYS[2], ARGV[1])
release(KEYS[3], KEYS[4], ARGV[2])
return 1
