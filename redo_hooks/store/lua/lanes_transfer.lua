-- lanes_transfer: give lanes owned by one job to another.
--
-- KEYS[1]      <p>:joblanes:<new job id>
-- KEYS[2..n]   lanestate of each lane
-- ARGV[1]      current owner (job id)     ARGV[2] new owner (job id)
-- ARGV[2+i]    subject of the lane of KEYS[1+i]
--
-- Run inside the same MULTI/EXEC that enqueues or schedules the new job, so
-- the job and its lanes appear together. A lane the current job no longer
-- owns is left alone. Returns how many lanes moved.
local moved = 0
for i = 2, #KEYS do
  if redis.call('HGET', KEYS[i], 'owner') == ARGV[1] then
    redis.call('HSET', KEYS[i], 'owner', ARGV[2])
    redis.call('RPUSH', KEYS[1], ARGV[1 + i])
    moved = moved + 1
  end
end
return moved
