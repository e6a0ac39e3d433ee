-- lane_fail: count a failed attempt of the lane's head event.
--
-- KEYS[1]  lanestate     ARGV[1] job id (must own the lane)
-- Returns the attempts so far, or -1 when another job owns the lane.
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then
  return -1
end
return redis.call('HINCRBY', KEYS[1], 'attempts', 1)
