-- lanes_orphaned: which of these lanes have an owner job that will not run them?
--
-- ARGV[1]  lane prefix (<p>:lane:)      ARGV[2]  lane state prefix (<p>:lanestate:)
-- ARGV[3]  RQ job key prefix (rq:job:)
-- ARGV[4], ARGV[5]  RQ's scheduled registries (the queue's, the quarantine's)
-- ARGV[6..]  lane keys
--
-- Read-only. For each lane with an owner (not 'parked') whose job is
-- missing or in none of the states that still run it (queued, started,
-- scheduled, deferred), or says 'scheduled' but is not in the scheduled
-- registry (promotion before the promoter was atomic could leave it so:
-- nothing would ever run it), returns its state key, owner and the job's
-- status ('' if the job is gone), flattened. Worker maintenance calls it a page of
-- lanes at a time: the reads stay in Redis instead of two round trips' worth
-- of replies per lane, and each owner job is read once per call.
local live = {queued = true, started = true, scheduled = true, deferred = true}
local statuses, out = {}, {}
for i = 6, #ARGV do
  local state = ARGV[2] .. string.sub(ARGV[i], #ARGV[1] + 1)
  local owner = redis.call('HGET', state, 'owner')
  if owner and owner ~= 'parked' then
    local job = string.match(owner, '^[^:]+')
    local status = statuses[job]
    if status == nil then
      status = redis.call('HGET', ARGV[3] .. job, 'status') or ''
      statuses[job] = status
    end
    if not live[status] or
        (status == 'scheduled' and not redis.call('ZSCORE', ARGV[4], job)
          and not redis.call('ZSCORE', ARGV[5], job)) then
      out[#out + 1] = state
      out[#out + 1] = owner
      out[#out + 1] = status
    end
  end
end
return out
