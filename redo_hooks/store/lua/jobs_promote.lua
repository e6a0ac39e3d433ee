-- jobs_promote: move the scheduled jobs that are due onto the queue, in one step.
--
-- KEYS[1]  rq:scheduled:<queue>   RQ's scheduled registry (job id -> due, epoch s)
-- KEYS[2]  rq:queue:<queue>       the queue
-- KEYS[3]  rq:queues              RQ's set of queues
-- ARGV[1]  now (epoch s)          ARGV[2]  RQ's job key prefix (rq:job:)
-- ARGV[3]  enqueued_at, as RQ formats it
-- ARGV[4]  at most this many jobs
--
-- What RQ's scheduler does (Queue._enqueue_job for each due job, then its
-- removal from the registry), but atomic: a job is either still scheduled or
-- queued, never in between, whatever fails around the call. An id whose job
-- hash is missing (or is not a hash) is dropped from the registry, as RQ's
-- scheduler drops it, and nothing else is held back by it: such an id can be
-- a job scheduled outside its transaction by rq 2 (its hash and a new entry
-- come with the commit), or residue. Returns {promoted, dropped, next due or
-- false}: the caller sleeps until the next due time.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[4]))
local promoted, dropped = 0, 0
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[1], id)
  local job = ARGV[2] .. id
  if redis.call('TYPE', job).ok == 'hash' then
    redis.call('HSET', job, 'status', 'queued', 'enqueued_at', ARGV[3])
    redis.call('RPUSH', KEYS[2], id)
    promoted = promoted + 1
  else
    dropped = dropped + 1
  end
end
if promoted > 0 then
  redis.call('SADD', KEYS[3], KEYS[2])
end
local next_due = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]
return {promoted, dropped, next_due or false}
