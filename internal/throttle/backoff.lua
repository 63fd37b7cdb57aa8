-- Records a 421 or 452 reply from a domain (see package throttle).
-- KEYS[1] the domain's backoff (a hash: until, level).
-- ARGV[1] now in microseconds, or "" for Redis's clock; ARGV[2] the first
-- backoff, ARGV[3] the longest (microseconds).
-- Answers {started, extended, backoff in microseconds, level}.
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local base, cap = tonumber(ARGV[2]), tonumber(ARGV[3])
local level = tonumber(redis.call('HGET', KEYS[1], 'level') or '0')
local untilv = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if untilv > now then
  -- A reply to an email under way when the backoff began: the same
  -- trouble, not a new one.
  local d = math.min(base * 2 ^ (level - 1), cap)
  return {0, 0, d, level}
end
local d = math.min(base * 2 ^ level, cap)
level = level + 1
untilv = now + d
redis.call('HSET', KEYS[1], 'until', string.format('%d', untilv), 'level', level)
-- The episode is forgotten when no email went to the domain for the
-- longest backoff after this one ended.
redis.call('PEXPIRE', KEYS[1], math.floor((d + cap) / 1000) + 1)
local started = 0
if level == 1 then started = 1 end
return {started, 1, d, level}
