-- How long a domain's backoff still runs, in microseconds (see package
-- throttle). KEYS[1] the domain's backoff; ARGV[1] now in microseconds, or "".
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local untilv = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if untilv > now then return untilv - now end
return 0
