-- Ends a domain's backoff episode after an accepted email, once the
-- backoff is over (see package throttle).
-- KEYS[1] the domain's backoff; ARGV[1] now in microseconds, or "".
-- Answers 1 when this call ended the episode, else 0.
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local untilv = redis.call('HGET', KEYS[1], 'until')
if not untilv or tonumber(untilv) > now then
  return 0
end
redis.call('DEL', KEYS[1])
return 1
