-- lane_fail: count a failed attempt of the lane's head event.
--
-- KEYS[1]  lanestate     ARGV[1] job id (must own the lane)     ARGV[2] error
-- ARGV[3]  event key     ARGV[4] handler     ARGV[5] key prefix (<p>:)
-- ARGV[6]  the attempt's run after its attempts: started ms|duration ms|error
--          (the run is written as retrying; lane_dead/lane_park overwrite it
--          when the retries are exhausted)
-- Returns {attempts so far, first error of this event}, or {-1, ''} when
-- another job owns the lane.
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then
  return {-1, ''}
end
-- @include runlog
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
if ARGV[3] then
  run_record(ARGV[5], ARGV[3], ARGV[4], 'retrying|' .. attempts .. '|' .. ARGV[6])
end
if attempts == 1 then
  redis.call('HSET', KEYS[1], 'first_error', ARGV[2])
end
return {attempts, redis.call('HGET', KEYS[1], 'first_error') or ARGV[2]}
