-- (included by the scripts that write or remove dead letters; store/issues.py
-- describes the keys)
-- issue_add: count dead letter `dead_id` of return `return_id`, dead `at`,
-- in issue `fp` of `handler` (no-op without a fingerprint).
local function issue_add(p, fp, title, handler, dead_id, return_id, at, parked)
  if not fp or fp == '' then
    return
  end
  local issue = p .. 'issue:' .. fp
  if redis.call('ZADD', issue .. ':letters', at, dead_id) == 0 then
    return
  end
  if redis.call('EXISTS', issue) == 0 then
    redis.call('HSET', issue, 'handler', handler, 'title', title, 'first_seen', at)
  end
  local last = tonumber(redis.call('HGET', issue, 'last_seen') or '0')
  if at >= last then
    redis.call('HSET', issue, 'last_seen', at, 'sample', dead_id)
    redis.call('ZADD', p .. 'issues', at, fp)
  end
  redis.call('HINCRBY', issue, 'count', 1)
  redis.call('HINCRBY', issue, 'seen', 1)
  if parked then
    redis.call('HINCRBY', issue, 'parked', 1)
  end
  redis.call('HINCRBY', issue .. ':returns', return_id, 1)
end

-- issue_remove: the dead letter whose record (JSON) is `record` is retried
-- or dropped; its issue closes with its last letter.
local function issue_remove(p, record)
  if not record then
    return
  end
  local letter = cjson.decode(record)
  local fp = letter['fingerprint']
  if type(fp) ~= 'string' or fp == '' then
    return
  end
  local issue = p .. 'issue:' .. fp
  if redis.call('ZREM', issue .. ':letters', letter['id']) == 0 then
    return
  end
  if redis.call('HINCRBY', issue, 'count', -1) <= 0 then
    redis.call('DEL', issue, issue .. ':letters', issue .. ':returns')
    redis.call('ZREM', p .. 'issues', fp)
    return
  end
  if letter['parked'] == true then
    redis.call('HINCRBY', issue, 'parked', -1)
  end
  if redis.call('HGET', issue, 'sample') == letter['id'] then
    -- The sample must be a letter still there: the newest one left.
    redis.call('HSET', issue, 'sample', redis.call('ZREVRANGE', issue .. ':letters', 0, 0)[1])
  end
  local return_id = letter['subject']
  if redis.call('HINCRBY', issue .. ':returns', return_id, -1) <= 0 then
    redis.call('HDEL', issue .. ':returns', return_id)
  end
end
