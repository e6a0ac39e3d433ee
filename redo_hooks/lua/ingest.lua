-- ingest: dedupe + store + route a batch of events, atomically per call.
--
-- KEYS[1]  rq:queue:<name>       RQ queue list
-- KEYS[2]  rq:queues             RQ's set of queues (so `rq info` sees ours)
-- ARGV[1]  dedupe ttl (s)        ARGV[2]  retention (s)
-- ARGV[3]  received_at (epoch s) ARGV[4]  RQ timestamp for created_at/enqueued_at
-- ARGV[5]  number of events      ARGV[6]  number of handler templates H
-- ARGV[7..11]  key prefixes: seen, event, lane, lanestate, rq job (see keys.py)
-- then H templates:  handler name, N, then N field/value items of the job hash
--                    that are the same for every lane job of that handler
-- then per event:    event key, body, type, subject, number of handlers
--   then per handler: template index (1-based), job id, job `data`
--
-- Returns one integer per event: 1 stored, 0 duplicate (already seen).
-- The dedupe mark, the stored body, the lane entries and (for a lane that was
-- idle) its RQ job are written in one script: no crash can leave one without
-- the others. A lane is idle when its state has no owner; the job created here
-- becomes its owner, so exactly one job runs a lane at any time.
-- Keys are built here from the prefixes the caller passes (keys.py defines
-- them): <lane prefix><handler>:<subject>, <event prefix><event key>, ...
local seen_p, ev_p, lane_p, state_p, job_p = ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11]
local stamp = ARGV[4]
local a = 12
local names, templates = {}, {}
for t = 1, tonumber(ARGV[6]) do
  names[t] = ARGV[a]
  local n = tonumber(ARGV[a + 1])
  local fields = {}
  for f = 1, n do
    fields[f] = ARGV[a + 1 + f]
  end
  templates[t] = fields
  a = a + 2 + n
end
local results = {}
for i = 1, tonumber(ARGV[5]) do
  local ekey, body, etype, subject = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local nh = tonumber(ARGV[a + 4])
  a = a + 5
  local fresh = redis.call('SET', seen_p .. ekey, '1', 'NX', 'EX', ARGV[1])
  if fresh then
    local ev = ev_p .. ekey
    redis.call('HSET', ev, 'body', body, 'type', etype, 'subject', subject,
               'received_at', ARGV[3], 'pending', nh)
    if nh == 0 then
      redis.call('EXPIRE', ev, ARGV[2])
    end
    for h = 1, nh do
      local t, job_id, data = tonumber(ARGV[a]), ARGV[a + 1], ARGV[a + 2]
      local lane = names[t] .. ':' .. subject
      redis.call('RPUSH', lane_p .. lane, ekey)
      if redis.call('HSETNX', state_p .. lane, 'owner', job_id) == 1 then
        local jobkey = job_p .. job_id
        redis.call('HSET', jobkey, unpack(templates[t]))
        redis.call('HSET', jobkey, 'data', data, 'description', 'lane ' .. names[t] .. ' ' .. subject,
                   'created_at', stamp, 'enqueued_at', stamp)
        redis.call('RPUSH', KEYS[1], job_id)
        redis.call('SADD', KEYS[2], KEYS[1])
      end
      a = a + 3
    end
  else
    a = a + 3 * nh
  end
  results[i] = fresh and 1 or 0
end
return results
