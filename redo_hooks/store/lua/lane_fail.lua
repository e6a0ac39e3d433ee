-- lane_fail: count a failed attempt of the lane's head event.
--
-- KEYS[1]  lanestate     ARGV[1] job id (must own the lane)     ARGV[2] error
-- Returns {attempts so far, first error of this event}, or {-1, ''} when
-- another job owns the lane.
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then
  return {-1, ''}
end
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
if attempts == 1 then
  redis.call('HSET', KEYS[1], 'first_error', ARGV[2])
end
return {attempts, redis.call('HGET', KEYS[1], 'first_error') or ARGV[2]}
