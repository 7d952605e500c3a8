// Lua scripts of the Redis job store. Each keeps a job's value and its index entries consistent in one atomic
// round trip. All scores (expiry and recency, in ms·1024) are computed by the caller and passed as strings:
// Redis's Lua formats numbers with 14 significant digits, which would corrupt 16-digit scores.
//
// Keys under the prefix P, with m = "<client>:<id>", both parts URI-encoded (so ":" only ever separates them,
// which keeps IPv6 clients and ids with colons apart):
//   P p:<m>          pending value (PX pending TTL)        P pi:<client>  zset id → expiry score (listing)
//   P d:<m>          completed value (PX completed TTL)    P di:<client>  zset id → completion score (listing)
//   P pall           zset m → expiry score (pending count)
//   P dlru           zset m → recency score (LRU cap)      P dexp         zset m → completion score (TTL sweep)
//   P own:<node>     zset m → expiry score: pending jobs of one node instance (recovery)
// The scripts derive some keys from P and m, so they need a standalone Redis (not Redis Cluster).
//
// Redis at its memory limit (noeviction) refuses commands that add data, and a read-only replica refuses every
// write, each at the command, mid-script. So the write scripts add data before they remove any (a refused
// write changes nothing), and the read scripts make their own bookkeeping writes with pcall and filter by
// score as they read, so reads keep working without them.

/** KEYS: pkey pidx pall own. ARGV: value ttlMs expScore id m nowScore. Returns the pending count. */
export const SET_RUNNING = `
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[5])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[6])
return redis.call('ZCARD', KEYS[3])
`;

/**
 * KEYS: pkey pidx pall own dkey didx dlru dexp.
 * ARGV: value ttlMs("0" = none) score id m max prefix expiredBefore("" = none) nowScore.
 * Stores the result, then removes the pending entry, sweeps expired results and evicts the least recently used
 * beyond `max`. Returns the pending count.
 */
export const SET_DONE = `
if ARGV[2] ~= '0' then
  redis.call('SET', KEYS[5], ARGV[1], 'PX', ARGV[2])
else
  redis.call('SET', KEYS[5], ARGV[1])
end
redis.call('ZADD', KEYS[6], ARGV[3], ARGV[4])
redis.call('ZADD', KEYS[7], ARGV[3], ARGV[5])
redis.call('ZADD', KEYS[8], ARGV[3], ARGV[5])
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[4])
redis.call('ZREM', KEYS[3], ARGV[5])
redis.call('ZREM', KEYS[4], ARGV[5])
local function drop(m)
  local sep = string.find(m, ':', 1, true)
  redis.call('DEL', ARGV[7] .. 'd:' .. m)
  redis.call('ZREM', ARGV[7] .. 'di:' .. string.sub(m, 1, sep - 1), string.sub(m, sep + 1))
  redis.call('ZREM', KEYS[7], m)
  redis.call('ZREM', KEYS[8], m)
end
if ARGV[8] ~= '' then
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[8], '-inf', ARGV[8], 'LIMIT', 0, 100)) do drop(m) end
end
local excess = redis.call('ZCARD', KEYS[7]) - tonumber(ARGV[6])
if excess > 0 then
  for _, m in ipairs(redis.call('ZRANGE', KEYS[7], 0, excess - 1)) do drop(m) end
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[9])
return redis.call('ZCARD', KEYS[3])
`;

/**
 * KEYS: n completed keys, n pending keys, dlru. ARGV: n score m1..mn.
 * Returns {completed values, pending values} (false where missing) and marks found results recently used
 * (skipped where Redis refuses the write: out of memory, read-only replica).
 */
export const GET = `
local n = tonumber(ARGV[1])
local done = {}
local pending = {}
for i = 1, n do
  local value = redis.call('GET', KEYS[i])
  if value then redis.pcall('ZADD', KEYS[2 * n + 1], 'XX', ARGV[2], ARGV[2 + i]) end
  done[i] = value
  pending[i] = redis.call('GET', KEYS[n + i])
end
return {done, pending}
`;

/** KEYS: pidx didx. ARGV: filter nowScore expiredBefore("" = none). Returns {pending ids, completed ids}. */
export const LIST = `
local pending = {}
local done = {}
if ARGV[1] ~= 'completed' then
  redis.pcall('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
  pending = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[2], '+inf')
end
if ARGV[1] ~= 'pending' then
  if ARGV[3] ~= '' then
    redis.pcall('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
    done = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[3], '+inf')
  else
    done = redis.call('ZRANGE', KEYS[2], 0, -1)
  end
end
return {pending, done}
`;

/** KEYS: pall. ARGV: nowScore. Drops expired entries and returns the pending count. */
export const COUNT_PENDING = `
redis.pcall('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[1], '+inf')
`;

/** KEYS: own. ARGV: nowScore. Drops expired entries and returns the members left. */
export const OWN_PENDING = `
redis.pcall('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')
`;
