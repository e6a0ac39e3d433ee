-- lane_dead: move the lane's head event to the dead-letter registry.
--
-- KEYS[1]  lane     KEYS[2] lanestate     KEYS[3] <p>:dead     KEYS[4] <p>:dead:ids
-- KEYS[5]  <p>:waiting                    KEYS[6] <p>:waiting:events
-- ARGV[1]  job id (must own the lane)     ARGV[2] event key (must be the head)
-- ARGV[3]  dead-letter id                 ARGV[4] record (JSON)      ARGV[5] now (s)
-- ARGV[6]  event key prefix (<p>:ev:)
-- ARGV[7]  the run, dead or parked (store/runlog.py)    ARGV[8] handler
-- ARGV[9]  key prefix (<p>:)
-- ARGV[10] the letter's issue: fingerprint    ARGV[11] its title    ARGV[12] return id
--
-- The event's `pending` count is left as it is, so its body is kept (no
-- expiry) for as long as the dead letter needs it. Returns 1, or 0 when this
-- job no longer owns the lane or the head moved.
-- @include waiting
-- @include issues
-- @include runlog
if redis.call('HGET', KEYS[2], 'owner') ~= ARGV[1] then
  return 0
end
if redis.call('LINDEX', KEYS[1], 0) ~= ARGV[2] then
  return 0
end
redis.call('LPOP', KEYS[1])
popped(KEYS[1], KEYS[5], KEYS[6], ARGV[6])
redis.call('HDEL', KEYS[2], 'attempts', 'first_error')
redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[3])
run_record(ARGV[9], ARGV[2], ARGV[8], ARGV[7])
issue_add(ARGV[9], ARGV[10], ARGV[11], ARGV[8], ARGV[3], ARGV[12], tonumber(ARGV[5]), false)
return 1
