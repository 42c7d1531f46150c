-- Adds units of a product to a cart, in one step so concurrent adds cannot lose an update.
-- KEYS[1]: the cart (a hash: product id -> JSON line)
-- ARGV[1]: product id; ARGV[2]: the new line's JSON (its quantity is the units to add);
-- ARGV[3]: units to add; ARGV[4]: max units per line; ARGV[5]: max lines; ARGV[6]: TTL (s);
-- ARGV[7]: '1' if the cart must already exist (a guest's token it did not issue just now).
-- Returns {'ok'}, {'missing'}, {'too_many', units already in the cart}, {'full'}, or
-- {'currency', the cart's currency}; only 'ok' changed anything.
if ARGV[7] == '1' and redis.call('EXISTS', KEYS[1]) == 0 then
  return {'missing'}
end
local existing = redis.call('HGET', KEYS[1], ARGV[1])
if existing then
  local line = cjson.decode(existing)
  local total = line.quantity + tonumber(ARGV[3])
  if total > tonumber(ARGV[4]) then
    return {'too_many', tostring(line.quantity)}
  end
  line.quantity = total
  redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(line))
else
  local lines = redis.call('HVALS', KEYS[1])
  if #lines >= tonumber(ARGV[5]) then
    return {'full'}
  end
  if #lines > 0 then
    local cart_currency = cjson.decode(lines[1]).currency
    if cart_currency ~= cjson.decode(ARGV[2]).currency then
      return {'currency', cart_currency}
    end
  end
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
redis.call('EXPIRE', KEYS[1], ARGV[6])
return {'ok'}
