-- job_claim: a lane job starts: close it to new lanes and take its lanes.
--
-- KEYS[1]  <p>:open:<handler>    KEYS[2]  <p>:joblanes:<job id>
-- ARGV[1]  job id     ARGV[2]  this execution's owner token (<job id>:<run>)
-- ARGV[3]  lanestate prefix followed by the handler name and ':'
-- ARGV[4]  lane prefix followed by the handler name and ':', to read each
--          lane's head event at once ('' not to)     ARGV[5]  event key prefix
-- ARGV[6]  body key prefix
-- ARGV[7]  most bytes of bodies the reply carries (0: no bound)
--
-- Returns the subjects of the lanes this run now owns, in the order they
-- were given to the job; with ARGV[4], each followed by what lane_next.lua
-- would answer for it now: the head event's key, body, attempts, found,
-- store and trace context ('' for the key of an empty lane) -- one round trip for every lane's
-- first step. Past ARGV[7] bytes of bodies, the rest are left out (their
-- key '' too): a reply waits in Redis' output buffer, which counts as Redis
-- memory, until it is read, and under memory pressure that room is the
-- workers'. Those lanes read their head in their first step instead. Atomic with ingest: once claimed, no lane can be
-- added to the job. Each lane still owned by the job (by its id, or by an
-- earlier run of it that RQ gave up on as crashed) is fenced to this run's
-- token, so an earlier run that is in fact still alive finds itself `lost`
-- at its next step and can never acknowledge an event out of turn.
-- @include release
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
local mine = {}
local prefix = ARGV[1] .. ':'
local budget, carried = tonumber(ARGV[7]) or 0, 0
for _, subject in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
  local state = ARGV[3] .. subject
  local owner = redis.call('HGET', state, 'owner')
  if owner == ARGV[1] or (owner and string.sub(owner, 1, #prefix) == prefix) then
    redis.call('HSET', state, 'owner', ARGV[2])
    mine[#mine + 1] = subject
    if ARGV[4] and ARGV[4] ~= '' then
      local head = redis.call('LINDEX', ARGV[4] .. subject, 0)
      if head and (budget == 0 or carried < budget) then
        local event = stored(ARGV[5] .. head, ARGV[6] .. head)
        carried = carried + (event[1] and #event[1] or 0)
        local attempts = redis.call('HGET', state, 'attempts') or '0'
        mine[#mine + 1] = head
        mine[#mine + 1] = event[1] or ''
        mine[#mine + 1] = attempts
        mine[#mine + 1] = event[1] and 1 or 0
        mine[#mine + 1] = event[2] or ''
        mine[#mine + 1] = event[3] or ''
      else
        for _ = 1, 6 do
          mine[#mine + 1] = ''
        end
      end
    end
  end
end
return mine
