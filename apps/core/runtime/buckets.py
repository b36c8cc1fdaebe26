"""The Redis Lua scripts, each written once: one token bucket (for any key, any rate), the dispatcher's
pace ledger and the API rate limit's windows. Both run on Redis' clock, so every worker of every machine shares one clock; a test may pass
its own `now` instead."""

from __future__ import annotations

from apps.core.redis import get_redis


def _now_from(arg: int) -> str:
    """Lua: `now` in microseconds from ARGV[arg] when the caller passed one (tests, the simulator's clock),
    else Redis' own clock, shared by every worker."""
    return (f"local now\nif ARGV[{arg}] then\n  now = tonumber(ARGV[{arg}])\nelse\n"
            "  local t = redis.call('TIME')\n  now = tonumber(t[1]) * 1000000 + tonumber(t[2])\nend\n")


# KEYS: one bucket each. ARGV: rate (tokens/s), capacity, tokens wanted from each bucket, TTL (s), and
# optionally now (us). Returns, per key, the tokens granted (whole ones, at most wanted) and the wait (us)
# until one more token would be there (0 when all wanted were granted). A missing bucket is full.
TOKEN_BUCKET_LUA = """
local rate = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
""" + _now_from(5) + """local out = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(v[1])
  local ts = tonumber(v[2])
  if tokens == nil or ts == nil then tokens = cap; ts = now end
  if now > ts then
    tokens = math.min(cap, tokens + (now - ts) * rate / 1000000)
    ts = now
  end
  local granted = math.min(want, math.floor(tokens))
  if granted < 0 then granted = 0 end
  tokens = tokens - granted
  local wait = 0
  if granted < want and tokens < 1 then wait = math.ceil((1 - tokens) * 1000000 / rate) end
  redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', string.format('%d', ts))
  redis.call('EXPIRE', key, ttl)
  out[2 * i - 1] = granted
  out[2 * i] = wait
end
return out
"""

# The dispatcher's per-number pace (apps.conversations.services.dispatch.pacing.NumberPacer): a one-second
# ledger under the cap plus a small burst bucket. KEYS[1] the number's pace (burst tokens, their timestamp,
# the ledger's sum), KEYS[2] its ledger: a list of "granted_at_us:count", oldest first. ARGV burst rate
# (tokens/s), burst capacity, window (us), window limit, wanted, and optionally now (us). Returns {granted,
# wait_us until the next `min(wanted - granted, capacity/4)` could be granted}.
PACE_LUA = """
local rate = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local limit = tonumber(ARGV[4])
local want = tonumber(ARGV[5])
""" + _now_from(6) + """local v = redis.call('HMGET', KEYS[1], 'tokens', 'ts', 'sum')
local tokens = tonumber(v[1])
local ts = tonumber(v[2])
local sum = tonumber(v[3])
if tokens == nil or ts == nil or sum == nil then
  tokens = cap
  ts = now
  sum = 0
  for _, e in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
    sum = sum + tonumber(string.match(e, ':(%d+)$'))
  end
end
if now > ts then
  tokens = math.min(cap, tokens + (now - ts) * rate / 1000000)
end
while true do
  local head = redis.call('LINDEX', KEYS[2], 0)
  if not head then
    sum = 0
    break
  end
  local at, n = string.match(head, '^(%d+):(%d+)$')
  if tonumber(at) + window > now then
    break
  end
  sum = sum - tonumber(n)
  redis.call('LPOP', KEYS[2])
end
local granted = math.min(want, math.floor(tokens), limit - sum)
if granted < 0 then granted = 0 end
if granted > 0 then
  tokens = tokens - granted
  sum = sum + granted
  redis.call('RPUSH', KEYS[2], string.format('%d:%d', now, granted))
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', string.format('%d', now), 'sum', string.format('%d', sum))
local ttl = math.ceil(window / 1000) + 60000
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
local wait = 0
if granted < want then
  local need = math.min(want - granted, math.max(1, math.floor(cap / 4)))
  if tokens < need then
    wait = math.ceil((need - tokens) * 1000000 / rate)
  end
  local over = sum + need - limit
  if over > 0 then
    local freed = 0
    for _, e in ipairs(redis.call('LRANGE', KEYS[2], 0, 63)) do
      local at, n = string.match(e, '^(%d+):(%d+)$')
      freed = freed + tonumber(n)
      wait = math.max(wait, tonumber(at) + window - now)
      if freed >= over then break end
    end
  end
end
return {granted, wait}
"""

# The API rate limit (apps.core.ratelimit): fixed minute and 10-second windows counted together.
# KEYS: the minute and burst counters. ARGV: per_minute, burst, lease units wanted, units returned.
RATE_WINDOWS_LUA = """
local per_minute, burst, want, returned = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local m = tonumber(redis.call('GET', KEYS[1]) or '0')
local b = tonumber(redis.call('GET', KEYS[2]) or '0')
if returned > 0 then
  if m >= returned then m = redis.call('DECRBY', KEYS[1], returned) end
  if b >= returned then b = redis.call('DECRBY', KEYS[2], returned) end
end
local left = math.min(per_minute - m, burst - b)
if left <= 0 then
  return {0, m, b}
end
local grant = math.max(1, math.min(want, math.floor(left / 8)))
m = redis.call('INCRBY', KEYS[1], grant)
if m == grant then redis.call('PEXPIRE', KEYS[1], 61000) end
b = redis.call('INCRBY', KEYS[2], grant)
if b == grant then redis.call('PEXPIRE', KEYS[2], 11000) end
return {grant, m, b}
"""

_scripts: dict[str, tuple] = {}


def script(name: str, source: str, client=None):
    """The registered script, cached per Redis client (tests swap the client)."""
    client = client or get_redis()
    cached = _scripts.get(name)
    if cached is None or cached[0] is not client:
        cached = _scripts[name] = (client, client.register_script(source))
    return cached[1]


def bucket_take(keys: list[str], *, rate: float, capacity: float, want: int = 1, ttl_seconds: int | None = None,
                now_us: int | None = None, client=None) -> list[tuple[int, float]]:
    """Take up to `want` tokens from each bucket: [(granted, seconds until one more token), ...]."""
    if not keys:
        return []
    ttl = ttl_seconds if ttl_seconds is not None else int(capacity / rate) + 60
    args = [rate, capacity, want, max(1, int(ttl))]
    if now_us is not None:
        args.append(int(now_us))
    flat = script("bucket", TOKEN_BUCKET_LUA, client)(keys=keys, args=args)
    return [(int(flat[i]), int(flat[i + 1]) / 1_000_000) for i in range(0, len(flat), 2)]
