-- Moves a guest's cart into a user's: quantities of a product in both are summed (capped),
-- other lines move as they are, and the guest's cart is deleted. All or nothing.
-- KEYS[1]: the user's cart; KEYS[2]: the guest's cart;
-- ARGV[1]: max units per line; ARGV[2]: max lines; ARGV[3]: TTL (s).
-- Returns {'ok'}, {'full'}, or {'currency', the user's cart's currency, the guest's}; a
-- missing guest cart is 'ok' and changes nothing, so merging again is harmless.
local guest = redis.call('HGETALL', KEYS[2])
if #guest == 0 then
  return {'ok'}
end
local max_quantity = tonumber(ARGV[1])
local mine = {}
local count = 0
local currency = nil
local user = redis.call('HGETALL', KEYS[1])
for i = 1, #user, 2 do
  mine[user[i]] = cjson.decode(user[i + 1])
  currency = mine[user[i]].currency
  count = count + 1
end
local incoming = {}
for i = 1, #guest, 2 do
  local line = cjson.decode(guest[i + 1])
  if currency ~= nil and line.currency ~= currency then
    return {'currency', currency, line.currency}
  end
  if mine[guest[i]] == nil then
    count = count + 1
  end
  incoming[guest[i]] = line
end
if count > tonumber(ARGV[2]) then
  return {'full'}
end
for i = 1, #guest, 2 do
  local kept = mine[guest[i]]
  if kept then
    kept.quantity = math.min(kept.quantity + incoming[guest[i]].quantity, max_quantity)
    redis.call('HSET', KEYS[1], guest[i], cjson.encode(kept))
  else
    redis.call('HSET', KEYS[1], guest[i], guest[i + 1])
  end
end
redis.call('DEL', KEYS[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {'ok'}
