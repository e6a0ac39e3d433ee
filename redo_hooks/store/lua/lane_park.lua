-- lane_park: the head event exhausted its retries and its handler parks:
-- record it as a dead letter, but keep it at the head and hold the lane.
--
-- KEYS[1]  lane     KEYS[2] lanestate     KEYS[3] <p>:dead     KEYS[4] <p>:dead:ids
-- ARGV[1]  job id (must own the lane)     ARGV[2] event key (must be the head)
-- ARGV[3]  dead-letter id                 ARGV[4] record (JSON)      ARGV[5] now (s)
-- KEYS[7]  <p>:dead:parked: the index of parked letters `status` counts
-- ARGV[7..12] the run (parked), handler, key prefix and issue, as for lane_dead
-- (It takes lane_dead's KEYS and ARGV; a parked head stays waiting, so the
-- waiting index in KEYS[5], KEYS[6] is left as it is.)
--
-- The lane's owner becomes the marker 'parked': ingest keeps appending the
-- return's later events behind the head, and no job runs the lane until an
-- operator retries (the head runs again, first) or drops (the head is
-- skipped) the dead letter (lane_unpark.lua). Returns 1, or 0 when this job
-- no longer owns the lane or the head moved.
-- @include runlog
-- @include issues
if redis.call('HGET', KEYS[2], 'owner') ~= ARGV[1] then
  return 0
end
if redis.call('LINDEX', KEYS[1], 0) ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[2], 'owner', 'parked', 'parked', ARGV[3])
redis.call('HDEL', KEYS[2], 'attempts', 'first_error')
redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[3])
redis.call('ZADD', KEYS[7], ARGV[5], ARGV[3])
run_record(ARGV[9], ARGV[2], ARGV[8], ARGV[7])
issue_add(ARGV[9], ARGV[10], ARGV[11], ARGV[8], ARGV[3], ARGV[12], tonumber(ARGV[5]), true)
return 1
