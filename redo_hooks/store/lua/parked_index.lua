-- parked_index: add dead letters read as parked to the index `status` counts.
--
-- KEYS[1]  <p>:dead     KEYS[2]  <p>:dead:parked
-- ARGV     pairs of dead-letter id, dead_at (s)
--
-- Maintenance read these records a moment ago; one may have been retried or
-- dropped since (lane_unpark removes it from both). Only ids still in the
-- registry are indexed, so the index never counts a letter that is gone.
-- Returns how many were indexed.
local added = 0
for i = 1, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then
    added = added + redis.call('ZADD', KEYS[2], ARGV[i + 1], ARGV[i])
  end
end
return added
