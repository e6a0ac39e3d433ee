-- lane_next: acknowledge the event just handled (if any) and return the next.
--
-- KEYS[1]  lane          KEYS[2]  lanestate
-- KEYS[3]  <p>:waiting   KEYS[4]  <p>:waiting:events
-- ARGV[1]  job id (must own the lane)        ARGV[2] acknowledged event key, or ''
-- ARGV[3]  event key prefix (<p>:ev:)        ARGV[4] retention (s)
-- ARGV[5]  the acknowledged event's run (store/runlog.py), or ''
-- ARGV[6]  handler                           ARGV[7] key prefix (<p>:)
-- ARGV[8]  body key prefix (<p>:body:)
--
-- Returns {'lost'} when another job owns the lane (this one must stop),
-- {'empty'} when the lane is drained (ownership released: the next ingest
-- creates a new job), or {'event', key, body, attempts, found, store, tp}
-- (tp: the W3C traceparent stored with the event, or '').
-- @include waiting
-- @include runlog
-- @include release
if redis.call('HGET', KEYS[2], 'owner') ~= ARGV[1] then
  return {'lost'}
end
if ARGV[2] ~= '' and redis.call('LINDEX', KEYS[1], 0) == ARGV[2] then
  redis.call('LPOP', KEYS[1])
  popped(KEYS[1], KEYS[3], KEYS[4], ARGV[3])
  redis.call('HDEL', KEYS[2], 'attempts', 'first_error')
  run_record(ARGV[7], ARGV[2], ARGV[6], ARGV[5] or '')
  release(ARGV[3] .. ARGV[2], ARGV[8] .. ARGV[2], ARGV[4])
end
local head = redis.call('LINDEX', KEYS[1], 0)
if not head then
  redis.call('DEL', KEYS[2])
  return {'empty'}
end
local event = stored(ARGV[3] .. head, ARGV[8] .. head)
local attempts = redis.call('HGET', KEYS[2], 'attempts') or '0'
if not event[1] then
  return {'event', head, '', attempts, 0, '', ''}
end
return {'event', head, event[1], attempts, 1, event[2] or '', event[3] or ''}
