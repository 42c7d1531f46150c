-- Removes the line whose id is ARGV[1]; the last line's removal removes the cart.
-- KEYS[1]: the cart; ARGV[1]: line id; ARGV[2]: TTL (s).
-- Returns 1, or 0 when the cart has no such line.
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  if cjson.decode(entries[i + 1]).id == ARGV[1] then
    redis.call('HDEL', KEYS[1], entries[i])
    if redis.call('EXISTS', KEYS[1]) == 1 then
      redis.call('EXPIRE', KEYS[1], ARGV[2])
    end
    return 1
  end
end
return 0
