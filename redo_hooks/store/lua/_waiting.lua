-- (included by the scripts that pop a lane's head: see scripts.py)
-- popped: after LPOP of a lane's head, keep the waiting index true:
--   <p>:waiting         zset    lane key -> received_at of its head event
--   <p>:waiting:events  string  number of event keys in all lanes
-- what the metrics and `redo-hooks status` read instead of scanning lanes.
local function popped(lane, waiting, waiting_events, ev_prefix)
  redis.call('DECR', waiting_events)
  local head = redis.call('LINDEX', lane, 0)
  if not head then
    redis.call('ZREM', waiting, lane)
    return
  end
  local at = redis.call('HGET', ev_prefix .. head, 'received_at')
  if not at then
    at = redis.call('TIME')[1]
  end
  redis.call('ZADD', waiting, at, lane)
end
