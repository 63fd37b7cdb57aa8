-- Books the next send slot for one email (see package throttle).
-- KEYS[1] the global TAT, KEYS[2] the domain's TAT, KEYS[3] the domain's
-- backoff (a hash: until, level).
-- ARGV[1] now in microseconds, or "" for Redis's clock; ARGV[2] the global
-- interval, ARGV[3] the domain's interval (microseconds, 0: no limit);
-- ARGV[4] the longest wait to book.
-- Answers {booked (1 or 0), wait in microseconds, in a backoff episode (1 or 0)}.
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local at = now
local episode = 0
local untilv = redis.call('HGET', KEYS[3], 'until')
if untilv then
  episode = 1
  untilv = tonumber(untilv)
  if untilv > at then at = untilv end
end
local tats = {}
for i = 1, 2 do
  local interval = tonumber(ARGV[i + 1])
  if interval > 0 then
    local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
    if tat < now then tat = now end
    tats[i] = tat
    if tat > at then at = tat end
  end
end
local wait = at - now
if wait > tonumber(ARGV[4]) then
  return {0, wait, episode}
end
for i = 1, 2 do
  local interval = tonumber(ARGV[i + 1])
  if interval > 0 then
    local tat = at + interval
    -- The key outlives its TAT by a second: once it is gone, the next
    -- email goes at once, as it would with a TAT in the past.
    redis.call('SET', KEYS[i], string.format('%d', tat), 'PX', math.floor((tat - now) / 1000) + 1000)
  end
end
return {1, wait, episode}
