-- (included by the scripts that end a hold on an event or read its body)
-- release: one hold less (a lane entry or a dead letter) on the event whose
-- hash is `ev` and body `body` (store/keys.py); at none, the event is only
-- kept for replay: both expire after the retention.
local function release(ev, body, retention)
  if redis.call('EXISTS', ev) == 1 and redis.call('HINCRBY', ev, 'pending', -1) <= 0 then
    redis.call('EXPIRE', ev, retention)
    redis.call('EXPIRE', body, retention)
  end
end

-- stored: {body or false, store, tp} of an event.
local function stored(ev, body)
  local fields = redis.call('HMGET', ev, 'store', 'tp')
  return {redis.call('GET', body), fields[1], fields[2]}
end
