-- ingest: dedupe + store + route a batch of events, atomically per call.
--
-- KEYS[1]  rq:queue:<name>       RQ queue list
-- KEYS[2]  rq:queues             RQ's set of queues (so `rq info` sees ours)
-- KEYS[3]  <p>:events            index of stored events by time received (replay)
-- KEYS[4]  <p>:waiting           lanes by the time their head was received
-- KEYS[5]  <p>:waiting:events    count of events waiting in lanes
-- ARGV[1]  dedupe ttl (s)        ARGV[2]  retention (s)
-- ARGV[3]  memory high-water mark (fraction of maxmemory; no check without a maxmemory)
-- ARGV[4]  RQ timestamp for created_at/enqueued_at
-- ARGV[5]  number of events      ARGV[6]  number of handler templates H
-- ARGV[7]  most lanes one job may gather
-- ARGV[8..14]  key prefixes: seen, event, lane, lanestate, open, joblanes, rq job
-- ARGV[15] most events waiting in lanes before new events are refused (0: no limit)
-- ARGV[16] field of KEYS[6] counting retained events dropped under memory pressure
-- KEYS[6]  <p>:metrics
-- ARGV[17] key prefix (<p>:) of the run log's indexes (store/keys.py)
-- ARGV[18] width (s) of the time buckets of the return and order indexes
-- ARGV[19] body key prefix (<p>:body:)
-- ARGV[20] '1' to write a dedupe mark for every event (the retention is
--          shorter than the dedupe window), else '0'
-- then H templates:  handler name, a new job id, N, then N field/value items:
--                    the complete hash of a queued lane job for that handler
-- then per event:    event key, body, type, subject, store ('' if none),
--                    traceparent ('' if not traced), order id, order name
--                    ('' if none), force
--                    (1: store and route even if seen, as a dead-letter retry
--                    does), number of handlers, then one template index
--                    (1-based) per handler
--
-- Returns one string: a character per event -- '1' stored, '0' duplicate
-- (already seen), 'b' refused because the backlog is at its ceiling, 'm'
-- refused because Redis' memory is at the high-water mark (nothing written
-- for a refused event; a forced event is never refused) -- then a space and
-- the number of retained events dropped to make room. (One bulk string, not
-- an array of integers: redis-py's pure-Python parser reads an array an
-- element at a time, which costs client CPU per event.)
--
-- Memory is read here, from Redis itself (below: at most 0.1 s old, plus
-- what the calls since stored): a flood cannot overshoot the mark between
-- two readings, and the room above it stays for the workers (RQ's
-- bookkeeping is refused at maxmemory under noeviction).
-- Before refusing, events kept only for replay (processed: a TTL, nothing
-- pending) yield, oldest first, so retention never starves intake.
--
-- Dedupe: an event is a duplicate when its body is stored and its hash says
-- it was received within the dedupe window, or when a dedupe mark (a
-- `seen` key, EX the window) says so. Bodies outlive the window (the
-- retention), so a body serves as the mark and most events need no key of
-- their own for it. Marks are written, and read, in "marking" mode only:
-- always when the retention is shorter than the window (ARGV[20]), and
-- until the time `<p>:dedupe` holds -- a window after a retained event
-- yielded to memory pressure here (it is given a mark), and a window after
-- this release's first call on a Redis the release before used (which kept
-- each body in its hash with a mark each: a rolling upgrade's receivers of
-- either release then find each other's events).
--
-- Everything for one event is written here or nothing is: the body
-- (<p>:body:<key>), its hash (<p>:ev:<key>), its key on each handler's lane
-- for the return, and the lane's RQ job. A lane with an owner is being run
-- (or is about to be): the event just waits in it. An idle lane is given to
-- the handler's *open* job -- a queued job no worker has started yet -- or,
-- if there is none or it is full, to a new job created from the template. So under backlog one job
-- gathers many lanes (one RQ job's overhead for many returns), and with idle
-- workers every lane gets its own job at once. Keys are built from the
-- prefixes keys.py defines: <lane prefix><handler>:<subject>, ...
--
-- The run log (store/runlog.py) starts here too: a run field `r:<handler>`
-- = 'w' (waiting) per handler the event is routed to, and the event in the
-- indexes the search reads: by return, by order (its id and its name, to
-- the return ids) and, routed to no handler, as unhandled (a search by type
-- walks the time index, <p>:events, and reads each event's type). A
-- forced event (a retry or a replay) keeps its place in them. The return
-- and order indexes are one sorted set per time bucket, members
-- "<return id>\0<event key>" and "<order>\0<return id>" read by ZRANGEBYLEX,
-- with one EXPIREAT per call (all of a call's events share its bucket),
-- where a set per return would need an EXPIRE per event.
--
-- Writes to keys the call's events share (the time, return, order and
-- waiting indexes, a job's lanes) are gathered and made once per key at
-- the end, not once per event, which saves Redis CPU per event
-- (benchmarks/dispatch.py). Nothing in the loop reads them.
local seen_p, ev_p, lane_p, state_p = ARGV[8], ARGV[9], ARGV[10], ARGV[11]
local open_p, joblanes_p, job_p = ARGV[12], ARGV[13], ARGV[14]
local cap = tonumber(ARGV[7])
local stamp = ARGV[4]
local ceiling = tonumber(ARGV[15])
-- Received when Redis says so: no receiver's clock decides what the
-- retention trims (one 8 days fast once emptied the replay index).
local t = redis.call('TIME')
local received = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
local base = ARGV[17]
-- The search indexes expire `retention` after the last event that wrote
-- them (and are trimmed by time): nothing is left once the events are gone.
local index_ttl = ARGV[2]
local cutoff = tonumber(received) - tonumber(ARGV[2])
local width = tonumber(ARGV[18])
local bucket = math.floor(tonumber(received) / width)
local returns_key = base .. 'ret:' .. bucket
local orders_key = base .. 'ord:' .. bucket
local indexed, unhandled = false, false
local body_p, always_mark = ARGV[19], ARGV[20] == '1'
local dedupe_ttl = tonumber(ARGV[1])
local now = tonumber(received)
local marks_key = base .. 'dedupe'
local marks_until = redis.call('GET', marks_key)
local first_call = not marks_until  -- (written once this call stores an event)
if first_call then
  marks_until = redis.call('EXISTS', KEYS[3]) == 1 and math.ceil(now + dedupe_ttl) or 0
end
local marking = always_mark or tonumber(marks_until) > now
-- Entries of the keys the call's events share, written once per key at the end.
local by_time, by_return, by_order, lanes_waiting = {}, {}, {}, {}
local job_lanes, jobs_touched = {}, {}
local function push(list, a, b)
  local n = #list
  list[n + 1], list[n + 2] = a, b
end
local a = 21
local names, new_ids, templates, used = {}, {}, {}, {}
for t = 1, tonumber(ARGV[6]) do
  names[t], new_ids[t] = ARGV[a], ARGV[a + 1]
  local n = tonumber(ARGV[a + 2])
  templates[t] = {unpack(ARGV, a + 3, a + 2 + n)}
  a = a + 3 + n
end

-- Each handler's open job, looked up once per call: its id (false: none
-- usable) and how many lanes it holds. Only this script adds lanes to a
-- queued job, and no worker runs while it does, so the count stays true.
local open_ids, open_counts = {}, {}
local function open_job(t)
  if open_ids[t] == nil then
    local open = redis.call('GET', open_p .. names[t])
    -- Still waiting in the queue (looked for among its newest entries): a job
    -- a worker has taken, even one it has not started yet (a process frozen by
    -- a GIL-holding handler, whose blocked wait Redis served), gets no more
    -- lanes, or it would gather every idle return until that worker runs.
    if open and redis.call('LPOS', KEYS[1], open, 'RANK', -1, 'MAXLEN', 64) then
      open_ids[t], open_counts[t] = open, redis.call('LLEN', joblanes_p .. open)
    else
      open_ids[t] = false
    end
  end
  if open_ids[t] and open_counts[t] < cap then
    return open_ids[t], false
  end
  -- The caller's fresh id; if this call already used it (the job it opened
  -- filled up), a suffix keeps the next one unique.
  local n = (used[t] or 0) + 1
  return n == 1 and new_ids[t] or (new_ids[t] .. '-' .. n), true
end

local function create_job(t, job_id)
  used[t] = (used[t] or 0) + 1
  local jobkey = job_p .. job_id
  redis.call('HSET', jobkey, unpack(templates[t]))
  redis.call('HSET', jobkey, 'created_at', stamp, 'enqueued_at', stamp)
  redis.call('RPUSH', KEYS[1], job_id)
  redis.call('SADD', KEYS[2], KEYS[1])
  redis.call('SET', open_p .. names[t], job_id)
  open_ids[t], open_counts[t] = job_id, 0
end

-- Memory: what Redis uses, and the most new events may bring it to.
-- `INFO memory` is the largest part of a one-event call: a call
-- that stores events keeps its reading for 0.1 s in <p>:memory, "used max",
-- and the calls in that time add what they store to it (estimates on the
-- high side). Only what others write meanwhile (the workers' bookkeeping,
-- far inside the room above the mark) is seen up to 0.1 s late.
local memory_key = base .. 'memory'
local function read_memory()
  local info = redis.call('INFO', 'memory')
  return tonumber(string.match(info, 'used_memory:(%d+)')),
         tonumber(string.match(info, 'maxmemory:(%d+)'))
end
local in_use, maxmemory
local reading = redis.call('GET', memory_key)
if reading then
  local used, most = string.match(reading, '^(%d+) (%d+)$')
  in_use, maxmemory = tonumber(used), tonumber(most)
else
  in_use, maxmemory = read_memory()
end
local stored_any = false
local limit = maxmemory * tonumber(ARGV[3])  -- 0: no maxmemory, no limit
local yielded, yield_tried, marked = 0, false, false
-- Drop the oldest events kept only for replay; the index loses them too.
local function yield_retention()
  yield_tried = true
  local oldest = redis.call('ZRANGE', KEYS[3], 0, 199)
  for _, ekey in ipairs(oldest) do
    local ev = ev_p .. ekey
    local ttl = redis.call('TTL', ev)
    if ttl == -2 then
      redis.call('ZREM', KEYS[3], ekey)
    elseif ttl > 0 then
      local kept = redis.call('HMGET', ev, 'pending', 'received_at')
      if tonumber(kept[1] or '0') <= 0 then
        -- Its body was its dedupe mark: still inside the window, it gets one.
        local left = math.ceil(tonumber(kept[2] or '0') + dedupe_ttl - now)
        if left > 0 then
          redis.call('SET', seen_p .. ekey, '1', 'EX', left)
          marked = true
        end
        redis.call('DEL', ev, body_p .. ekey)
        redis.call('ZREM', KEYS[3], ekey)
        yielded = yielded + 1
      end
    end
  end
  if yielded > 0 then
    redis.call('HINCRBY', KEYS[6], ARGV[16], yielded)
  end
  if marked then
    marking, marks_until, first_call = true, math.ceil(now + dedupe_ttl), false
    redis.call('SET', marks_key, marks_until)
  end
  in_use = read_memory()
end

-- Whether the stored event `ekey` was received within the dedupe window.
local function received_within(ekey)
  local at = redis.call('HGET', ev_p .. ekey, 'received_at')
  return at ~= false and tonumber(at) > now - dedupe_ttl
end
-- Seen within the window (reads only): marked, or its hash says so.
local function seen(ekey)
  return (marking and redis.call('EXISTS', seen_p .. ekey) == 1) or received_within(ekey)
end

-- The index keeps what the retention keeps.
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', tonumber(received) - tonumber(ARGV[2]))
-- Events waiting in lanes: read once, counted here, written once at the end.
local waiting = tonumber(redis.call('GET', KEYS[5]) or '0')
local added = 0
local results = {}
for i = 1, tonumber(ARGV[5]) do
  local ekey, body, etype, subject = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local store, tp = ARGV[a + 4], ARGV[a + 5]
  local order_id, order_name = ARGV[a + 6], ARGV[a + 7]
  local force, nh = ARGV[a + 8] == '1', tonumber(ARGV[a + 9])
  a = a + 10
  local ev, bkey = ev_p .. ekey, body_p .. ekey
  local fresh
  -- What the event adds: its body, keys and entries (an estimate on the high side).
  local cost = #body + 4 * #ekey + nh * (2 * #subject + 96) + 256
  if not force and limit > 0 and in_use + cost > limit and not yield_tried then
    yield_retention()
  end
  if not force and ceiling > 0 and waiting + added >= ceiling then
    fresh = -1
  elseif not force and limit > 0 and in_use + cost > limit and not seen(ekey) then
    fresh = -2  -- (a duplicate is still answered as one)
  elseif force then
    if marking then
      redis.call('SET', seen_p .. ekey, '1', 'EX', dedupe_ttl)
    end
    redis.call('SET', bkey, body, 'NX')
    fresh = true
  elseif marking and not redis.call('SET', seen_p .. ekey, '1', 'NX', 'EX', dedupe_ttl) then
    fresh = false
  elseif redis.call('SET', bkey, body, 'NX') then
    fresh = true
  else
    -- The same bytes are stored: a duplicate within the window, or Redo
    -- delivering them again after it (kept for replay, or still waiting).
    fresh = not received_within(ekey)
  end
  if fresh and fresh ~= -1 and fresh ~= -2 then
    -- The hash: what routing and the run log read, and a run field `r:<handler>`
    -- = 'w' (waiting) per handler. HSET answers how many fields it added:
    -- fewer than it set means the hash was already there.
    -- A replay or a retry routes a stored event again: it keeps when it was
    -- received, and says when it was queued again.
    local when = 'received_at'
    if force and redis.call('HEXISTS', ev, 'received_at') == 1 then
      when = 'requeued_at'
    end
    local fields = {'type', etype, 'subject', subject, when, received}
    if store ~= '' then
      fields[#fields + 1], fields[#fields + 2] = 'store', store
    end
    if order_name .. order_id ~= '' then  -- what the event lists show of its order
      local shown = order_name ~= '' and order_name or order_id
      fields[#fields + 1], fields[#fields + 2] = 'order', shown
    end
    if tp ~= '' then  -- the W3C trace context of the request, when traced
      fields[#fields + 1], fields[#fields + 2] = 'tp', tp
    end
    for h = 1, nh do
      fields[#fields + 1], fields[#fields + 2] = 'r:' .. names[tonumber(ARGV[a + h - 1])], 'w'
    end
    local existing = #fields / 2 - redis.call('HSET', ev, unpack(fields))
    if not force then
      push(by_time, received, ekey)
      push(by_return, 0, subject .. '\0' .. ekey)
      if order_id ~= '' and order_name ~= '' then
        push(by_order, 0, order_id .. '\0' .. subject)
        push(by_order, 0, order_name .. '\0' .. subject)
      elseif order_id .. order_name ~= '' then
        push(by_order, 0, order_id .. order_name .. '\0' .. subject)
      end
      indexed = true
      if nh == 0 then
        redis.call('ZADD', base .. 'out:unhandled', received, ekey)
        unhandled = true
      end
    end
    -- `pending` counts the lane entries still holding the event. It is added
    -- to, not set: the same event delivered again after the dedupe window may
    -- still be waiting in lanes from the first time.
    local pending = redis.call('HINCRBY', ev, 'pending', nh)
    if pending <= 0 then
      redis.call('EXPIRE', ev, ARGV[2])
      redis.call('EXPIRE', bkey, ARGV[2])
    elseif existing > 0 then
      -- The hash was there (a redelivery): if it was retained, keep it now
      -- until every lane is done with it. A new hash has no TTL to remove.
      redis.call('PERSIST', ev)
      redis.call('PERSIST', bkey)
    end
    for h = 1, nh do
      local t = tonumber(ARGV[a + h - 1])
      local lane = names[t] .. ':' .. subject
      if redis.call('RPUSH', lane_p .. lane, ekey) == 1 then
        push(lanes_waiting, received, lane_p .. lane)
      end
      added = added + 1
      -- An idle lane (no owner) goes to the handler's open job, or a new one.
      local job_id, new_job = open_job(t)
      if redis.call('HSETNX', state_p .. lane, 'owner', job_id) == 1 then
        if new_job then
          create_job(t, job_id)
        end
        local held = job_lanes[job_id]
        if not held then
          held = {}
          job_lanes[job_id] = held
          jobs_touched[#jobs_touched + 1] = job_id
        end
        held[#held + 1] = subject
        open_counts[t] = open_counts[t] + 1
      end
    end
  end
  a = a + nh
  if fresh == -1 then
    results[i] = 'b'
  elseif fresh == -2 then
    results[i] = 'm'
  else
    results[i] = fresh and '1' or '0'
    if fresh then
      in_use = in_use + cost
      stored_any = true
      if first_call then
        redis.call('SET', marks_key, marks_until)
        first_call = false
      end
    end
  end
end
-- The gathered writes, a long batch in parts (a Lua call takes a few
-- thousand arguments at most).
local function write_all(cmd, key, items)
  for from = 1, #items, 1000 do
    redis.call(cmd, key, unpack(items, from, math.min(from + 999, #items)))
  end
end
write_all('ZADD', KEYS[3], by_time)
write_all('ZADD', returns_key, by_return)
write_all('ZADD', orders_key, by_order)
write_all('ZADD', KEYS[4], lanes_waiting)
for _, job_id in ipairs(jobs_touched) do
  write_all('RPUSH', joblanes_p .. job_id, job_lanes[job_id])
end
if added > 0 then
  redis.call('INCRBY', KEYS[5], added)
end
if unhandled then
  redis.call('ZREMRANGEBYSCORE', base .. 'out:unhandled', '-inf', cutoff)
  redis.call('EXPIRE', base .. 'out:unhandled', index_ttl)
end
if indexed then
  local ends = (bucket + 1) * width + tonumber(index_ttl)
  redis.call('EXPIREAT', returns_key, ends)
  redis.call('EXPIREAT', orders_key, ends)
end
if stored_any then
  if reading then
    redis.call('SET', memory_key, string.format('%d %d', in_use, maxmemory), 'KEEPTTL')
  else
    redis.call('SET', memory_key, string.format('%d %d', in_use, maxmemory), 'PX', 100)
  end
end
return table.concat(results) .. ' ' .. yielded
