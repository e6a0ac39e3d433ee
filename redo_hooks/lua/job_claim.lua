-- job_claim: a lane job starts: close it to new lanes and list its lanes.
--
-- KEYS[1]  <p>:open:<handler>    KEYS[2]  <p>:joblanes:<job id>
-- ARGV[1]  job id
--
-- Returns the subjects of the job's lanes, in the order they were given to
-- it. Atomic with ingest: once claimed, no lane can be added to the job.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
return redis.call('LRANGE', KEYS[2], 0, -1)
