-- (included by the scripts that end a step of a handler's run: see store/runlog.py)
-- run_record: write one handler's run into its event's hash, field
-- r:<handler> = outcome|attempts|started ms|duration ms|error, and, for every
-- outcome but ok, the event key into <p>:out:<outcome>, scored by when the
-- run ended (what the run-log search reads). Nothing when `run` is '' or the
-- event is gone.
local function run_record(base, key, handler, run)
  if run == '' then
    return
  end
  local ev = base .. 'ev:' .. key
  if redis.call('EXISTS', ev) == 0 then
    return
  end
  redis.call('HSET', ev, 'r:' .. handler, run)
  local outcome, started, took = string.match(run, '^(%a+)|%d+|(%d+)|(%d+)|')
  if outcome and outcome ~= 'ok' then
    redis.call('ZADD', base .. 'out:' .. outcome, (tonumber(started) + tonumber(took)) / 1000, key)
  end
end
