-- drift_record: count what one body said that the models do not know.
--
-- KEYS[1] <p>:drift:count   KEYS[2] <p>:drift:first   KEYS[3] <p>:drift:last
-- KEYS[4] <p>:drift:sample  KEYS[5] <p>:drift:untracked
-- ARGV[1] now (epoch s)     ARGV[2] most findings tracked
-- ARGV[3] the body's return id, ARGV[4..] its findings ("kind|path|value")
--
-- A finding already tracked is counted and its last-seen time moved; a new
-- one is tracked while fewer than ARGV[2] are, else only counted in
-- KEYS[5]: memory and metric labels stay bounded whatever Redo sends.
-- Returns the findings tracked for the first time (to be logged once).
local new = {}
local cap = tonumber(ARGV[2])
for i = 4, #ARGV do
  local finding = ARGV[i]
  if redis.call('HEXISTS', KEYS[1], finding) == 1 then
    redis.call('HINCRBY', KEYS[1], finding, 1)
    redis.call('HSET', KEYS[3], finding, ARGV[1])
  elseif redis.call('HLEN', KEYS[1]) < cap then
    redis.call('HSET', KEYS[1], finding, 1)
    redis.call('HSET', KEYS[2], finding, ARGV[1])
    redis.call('HSET', KEYS[3], finding, ARGV[1])
    redis.call('HSET', KEYS[4], finding, ARGV[3])
    new[#new + 1] = finding
  else
    redis.call('INCR', KEYS[5])
  end
end
return new
