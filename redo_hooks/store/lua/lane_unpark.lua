-- lane_unpark: an operator retries or drops the dead letter a lane is parked on.
--
-- KEYS[1]  lane     KEYS[2] lanestate     KEYS[3] <p>:dead     KEYS[4] <p>:dead:ids
-- KEYS[5]  <p>:ev:<head event key>        KEYS[6] <p>:joblanes:<new job id>
-- KEYS[7]  <p>:waiting                    KEYS[8] <p>:waiting:events
-- KEYS[9]  <p>:dead:parked                KEYS[10] <p>:body:<head event key>
-- ARGV[1]  dead-letter id    ARGV[2] new job id    ARGV[3] subject
-- ARGV[4]  '1' to drop the head event, '0' to run it again    ARGV[5] retention (s)
-- ARGV[6]  event key prefix (<p>:ev:)     ARGV[7] handler (its run is waiting again on retry)
-- ARGV[8]  key prefix (<p>:)
--
-- Run inside the MULTI/EXEC that enqueues the new job, so the lane and its
-- job appear together. Returns 1, or 0 when the lane is not parked on this
-- dead letter (the new job then finds no lane and does nothing).
-- @include waiting
-- @include release
-- @include issues
if redis.call('HGET', KEYS[2], 'parked') ~= ARGV[1] then
  return 0
end
issue_remove(ARGV[8], redis.call('HGET', KEYS[3], ARGV[1]))
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[9], ARGV[1])
redis.call('HDEL', KEYS[2], 'parked')
if ARGV[4] == '1' then
  redis.call('LPOP', KEYS[1])
  popped(KEYS[1], KEYS[7], KEYS[8], ARGV[6])
  release(KEYS[5], KEYS[10], ARGV[5])
elseif ARGV[7] and redis.call('EXISTS', KEYS[5]) == 1 then
  redis.call('HSET', KEYS[5], 'r:' .. ARGV[7], 'w')
end
if redis.call('LLEN', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2])
  return 1
end
redis.call('HSET', KEYS[2], 'owner', ARGV[2])
redis.call('RPUSH', KEYS[6], ARGV[3])
return 1
