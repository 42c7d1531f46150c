-- Sets the quantity of the line whose id is ARGV[1].
-- KEYS[1]: the cart; ARGV[1]: line id; ARGV[2]: the new quantity; ARGV[3]: TTL (s).
-- Returns 1, or 0 when the cart has no such line (and then changes nothing).
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  local line = cjson.decode(entries[i + 1])
  if line.id == ARGV[1] then
    line.quantity = tonumber(ARGV[2])
    redis.call('HSET', KEYS[1], entries[i], cjson.encode(line))
    redis.call('EXPIRE', KEYS[1], ARGV[3])
    return 1
  end
end
return 0
