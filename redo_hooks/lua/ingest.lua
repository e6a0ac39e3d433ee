-- ingest: dedupe + store + route a batch of events, atomically per call.
--
-- KEYS[1]  rq:queue:<name>       RQ queue list
-- KEYS[2]  rq:queues             RQ's set of queues (so `rq info` sees ours)
-- then, per event:   seen, ev
--   then, per handler of that event: lane, lanestate, rq:job:<job id>
-- ARGV[1]  dedupe ttl (s)        ARGV[2] retention (s)      ARGV[3] number of events
-- then, per event:   event key, body, type, subject, received_at, number of handlers
--   then, per handler: job id, number of job-hash arguments N, then N field/value items
--
-- Returns one integer per event: 1 stored, 0 duplicate (already seen).
-- The dedupe mark, the stored body, the lane entries and (for a lane that was
-- idle) its RQ job are written in one script: no crash can leave one without
-- the others. A lane is idle when its state has no owner; the job created here
-- becomes its owner, so exactly one job runs a lane at any time.
local k, a = 3, 4
local results = {}
for i = 1, tonumber(ARGV[3]) do
  local seen, ev = KEYS[k], KEYS[k + 1]
  k = k + 2
  local ekey, body, etype, subject, received = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local nh = tonumber(ARGV[a + 5])
  a = a + 6
  local fresh = redis.call('SET', seen, '1', 'NX', 'EX', ARGV[1])
  if fresh then
    redis.call('HSET', ev, 'body', body, 'type', etype, 'subject', subject,
               'received_at', received, 'pending', nh)
    if nh == 0 then
      redis.call('EXPIRE', ev, ARGV[2])
    end
  end
  for h = 1, nh do
    local lane, state, jobkey = KEYS[k], KEYS[k + 1], KEYS[k + 2]
    k = k + 3
    local job_id, nf = ARGV[a], tonumber(ARGV[a + 1])
    a = a + 2
    if fresh then
      redis.call('RPUSH', lane, ekey)
      if redis.call('HSETNX', state, 'owner', job_id) == 1 then
        redis.call('HSET', jobkey, unpack(ARGV, a, a + nf - 1))
        redis.call('RPUSH', KEYS[1], job_id)
        redis.call('SADD', KEYS[2], KEYS[1])
      end
    end
    a = a + nf
  end
  results[i] = fresh and 1 or 0
end
return results
