-- permit_take: a cluster-wide permit to start one run of a handler, if its
-- limits allow one now (max_concurrency and/or rate_limit).
--
-- KEYS[1]  <p>:permits:<handler>   zset  holder -> lease end (s, Redis' clock)
-- KEYS[2]  <p>:starts:<handler>    zset  start id -> start time (s), the window's log
-- ARGV[1]  holder (a lane run's id)        ARGV[2] lease (s)
-- ARGV[3]  max concurrent runs (0: none)   ARGV[4] starts allowed per window (0: none)
-- ARGV[5]  window (s)
--
-- Leases that ended (their holder died without releasing) are dropped first,
-- so a killed worker's permits come back when their lease runs out. Times are
-- Redis' own (TIME), so no worker's clock matters. Returns {1, 0} when
-- granted, else {0, seconds to wait before trying again}.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local cap, per, window = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if cap > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  if redis.call('ZCARD', KEYS[1]) >= cap then
    local next_end = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]
    -- A release usually comes much sooner than a lease's end: look again soon.
    return {0, tostring(math.min(0.5, math.max(0.05, tonumber(next_end) - now)))}
  end
end
if per > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
  if redis.call('ZCARD', KEYS[2]) >= per then
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')[2]
    return {0, tostring(math.max(0.01, tonumber(oldest) + window - now))}
  end
  redis.call('ZADD', KEYS[2], now, ARGV[1] .. ':' .. t[1] .. t[2])
  redis.call('EXPIRE', KEYS[2], math.ceil(window) + 1)
end
if cap > 0 then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
end
return {1, '0'}
