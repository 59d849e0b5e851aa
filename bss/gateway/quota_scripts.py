"""The Lua scripts of the quota limiter (bss.gateway.quota), each run atomically in Redis.

A key's state is a hash: `tat` (the GCRA's theoretical arrival time: when the key's schedule is
free again), `rate` (the pace `tat` was computed at), `slot` and `slot_n` (the time and size of
the last call or batch booked), `limit`, `factor` (the share of the limit
left by slow-downs) with `limited_at` and `slowed_at`, `limited` (rate-limit answers counted),
`blocked_until` (a Retry-After), `queue` (where the line of jobs waiting for the key ends). Calls
per second are counted in `<state>:calls`, and the index of keys in use is a sorted set. Times
are seconds, from the caller's clock or, when it passes a negative time, from Redis's.
"""

LIBRARY = """
local function clock(arg)
  local now = tonumber(arg)
  if now < 0 then
    local t = redis.call('TIME')
    now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  end
  return now
end
local function factor_at(factor, limited_at, now, quiet, step, step_seconds)
  if factor >= 1 then return 1 end
  local calm = now - limited_at - quiet
  if calm < 0 then return factor end
  return math.min(1, factor + step * (math.floor(calm / step_seconds) + 1))
end
"""

# KEYS: state, calls, index. ARGV: now, limit, n, headroom, burst, lag, member, ttl, window,
# quiet, step, step_seconds, max_wait. Returns the seconds until the n calls may go: when that is
# at most max_wait they are booked (counted) for then, else nothing is counted.
ACQUIRE = (
    LIBRARY
    + """
local now = clock(ARGV[1])
local limit, n = tonumber(ARGV[2]), tonumber(ARGV[3])
local headroom, burst, lag = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local ttl, window = tonumber(ARGV[8]), tonumber(ARGV[9])
local s = redis.call('HMGET', KEYS[1], 'tat', 'rate', 'factor', 'limited_at', 'blocked_until',
  'slot', 'slot_n')
local tat = tonumber(s[1]) or 0
local factor = factor_at(tonumber(s[3]) or 1, tonumber(s[4]) or 0, now,
  tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12]))
local rate = limit * headroom * factor
local interval = 1 / rate
local old_rate, slot = tonumber(s[2]), tonumber(s[6])
if old_rate and old_rate ~= rate and slot then
  -- the pace changed (slowed, recovered, another limit): the key is free the new interval
  -- after the last call booked, which keeps its time (its thread is asleep until then)
  tat = slot + (tonumber(s[7]) or 1) * interval
end
local cap = math.max(n, burst)
-- a call a little late keeps the cadence; a quiet key gives no credit for the time unused
local base = tat
if now - tat > lag * interval then base = now end
base = math.max(base, tonumber(s[5]) or 0)
local new_tat = base + n * interval
local wait = math.max(0, new_tat - cap * interval - now)
if wait > tonumber(ARGV[13]) + 1e-9 then
  redis.call('HSET', KEYS[1], 'tat', tat, 'rate', rate, 'limit', limit)
  redis.call('EXPIRE', KEYS[1], ttl)
  return tostring(wait)
end
redis.call('HSET', KEYS[1], 'tat', new_tat, 'rate', rate, 'limit', limit, 'slot', now + wait,
  'slot_n', n)
redis.call('EXPIRE', KEYS[1], ttl)
local second = math.floor(now)
redis.call('HINCRBY', KEYS[2], math.floor(now + wait), n)
for _, field in ipairs(redis.call('HKEYS', KEYS[2])) do
  if tonumber(field) < second - window then redis.call('HDEL', KEYS[2], field) end
end
redis.call('EXPIRE', KEYS[2], window * 2 + 1)
redis.call('ZADD', KEYS[3], now, ARGV[7])
return tostring(wait)
"""
)

# KEYS: state, index. ARGV: now, retry_after (negative: none), member, ttl, slow_factor, floor,
# cooldown, quiet, step, step_seconds, lone_factor, lone_after. Returns the new slow-down factor.
SLOW_DOWN = (
    LIBRARY
    + """
local now = clock(ARGV[1])
local s = redis.call('HMGET', KEYS[1], 'factor', 'limited_at', 'slowed_at', 'blocked_until')
local factor = factor_at(tonumber(s[1]) or 1, tonumber(s[2]) or 0, now,
  tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10]))
local slowed_at = tonumber(s[3])
if not slowed_at or now - slowed_at >= tonumber(ARGV[7]) then
  -- a lone answer trims the pace; answers on each other's heels halve it
  local lone = now - (tonumber(s[2]) or 0) >= tonumber(ARGV[12])
  local by = lone and tonumber(ARGV[11]) or tonumber(ARGV[5])
  factor = math.max(tonumber(ARGV[6]), factor * by)
  redis.call('HSET', KEYS[1], 'slowed_at', now)
end
redis.call('HSET', KEYS[1], 'factor', factor, 'limited_at', now)
redis.call('HINCRBY', KEYS[1], 'limited', 1)
local retry_after = tonumber(ARGV[2])
if retry_after > 0 and now + retry_after > (tonumber(s[4]) or 0) then
  redis.call('HSET', KEYS[1], 'blocked_until', now + retry_after)
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
redis.call('ZADD', KEYS[2], now, ARGV[3])
return tostring(factor)
"""
)

# KEYS: state. ARGV: now, limit, n, headroom, at_least, ttl, quiet, step, step_seconds.
# Books a place in the line of jobs that gave their thread back; returns the seconds until it.
BOOK_RETURN = (
    LIBRARY
    + """
local now = clock(ARGV[1])
local s = redis.call('HMGET', KEYS[1], 'queue', 'factor', 'limited_at')
local factor = factor_at(tonumber(s[2]) or 1, tonumber(s[3]) or 0, now,
  tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9]))
local interval = 1 / (tonumber(ARGV[2]) * tonumber(ARGV[4]) * factor)
local at = math.max(tonumber(s[1]) or 0, now + tonumber(ARGV[5]))
redis.call('HSET', KEYS[1], 'queue', at + tonumber(ARGV[3]) * interval)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[6]))
return tostring(at - now)
"""
)

# KEYS: index. ARGV: now, prefix, ttl, window, quiet, step, step_seconds.
# Per live key: member, limit, factor, rate-limit answers, seconds blocked, calls in the window.
USAGE = (
    LIBRARY
    + """
local now = clock(ARGV[1])
local prefix, window = ARGV[2], tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]))
local out = {}
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local state = prefix .. ':' .. member
  local s = redis.call('HMGET', state, 'limit', 'factor', 'limited_at', 'limited', 'blocked_until')
  if s[1] then
    local factor = factor_at(tonumber(s[2]) or 1, tonumber(s[3]) or 0, now,
      tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]))
    local second, calls = math.floor(now), 0
    local counts = redis.call('HGETALL', state .. ':calls')
    for i = 1, #counts, 2 do
      local at = tonumber(counts[i])
      if at >= second - window and at < second then calls = calls + tonumber(counts[i + 1]) end
    end
    local blocked = math.max(0, (tonumber(s[5]) or 0) - now)
    table.insert(out, {member, s[1], tostring(factor), s[4] or '0', tostring(blocked),
      tostring(calls)})
  end
end
return out
"""
)
