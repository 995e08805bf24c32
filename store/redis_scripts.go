package store

import "github.com/redis/go-redis/v9"

// The Lua scripts run atomically in Redis. Each touches only the keys of one
// endpoint, which share a hash tag, so they work in Redis Cluster too.
// Whatever they read may have been written by hand: they treat malformed
// values as absent instead of failing on them.

// casScript proposes a transition: a compare-and-set on the state hash's
// version and state. The winner writes the new state, refreshes the TTL and
// publishes the transition; a loser gets the current hash back.
//
// KEYS: 1 state hash, 2 window hash, 3 probes hash.
// ARGV: 1 expected version (-1: any), 2 expected state ("" : any),
// 3 new state, 4 open_until (Unix ms), 5 reason, 6 origin instance, 7 TTL ms,
// 8 floor version (the new version exceeds it), 9 channel, 10 endpoint,
// 11 probe slots to claim when the new state is HalfOpen, 12 probe lease ms,
// 13 when the transition happened (Unix ms; 0: now, by the server's clock),
// 14 held_by (a component hold's owner, or ""), 15 hold_until (Unix ms, or 0).
//
// Returns {1, version, old state, transition ms, probes claimed} to the winner,
// {0, {field, value, ...}, version as the script read it} to a loser.
var casScript = redis.NewScript(`
local valid = {Closed=true, Open=true, HalfOpen=true, ForcedOpen=true, Disabled=true}
local st = KEYS[1]
local ty = redis.call('TYPE', st).ok
local ver, cur, clean = 0, 'Closed', true
if ty == 'hash' then
  local h = redis.call('HMGET', st, 'version', 'state')
  local v = tonumber(h[1])
  if v and v >= 0 and v == math.floor(v) and valid[h[2]] then
    ver, cur = v, h[2]
  else
    clean = false
  end
elseif ty ~= 'none' then
  clean = false
end
local expected = tonumber(ARGV[1])
if expected >= 0 and (ver ~= expected or (ARGV[2] ~= '' and ARGV[2] ~= cur)) then
  if ty == 'hash' then return {0, redis.call('HGETALL', st), ver} end
  return {0, {}, ver}
end
if not clean then redis.call('DEL', st) end
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
local upd = tonumber(ARGV[13])
if not upd or upd <= 0 then upd = now end
local nv = math.max(ver, tonumber(ARGV[8])) + 1
local to = ARGV[3]
redis.call('HSET', st, 'version', string.format('%d', nv), 'state', to, 'old_state', cur,
  'open_until', ARGV[4], 'held_by', ARGV[14], 'hold_until', ARGV[15],
  'reason', ARGV[5], 'origin', ARGV[6], 'updated', string.format('%d', upd))
if to == 'Closed' or to == 'Disabled' then
  -- The window starts again: counts pushed by instances that have not yet
  -- seen this version are ignored.
  redis.call('HSET', st, 'window_epoch', string.format('%d', nv))
  redis.call('DEL', KEYS[2], KEYS[3])
end
redis.call('PEXPIRE', st, ARGV[7])
local claimed = 0
local cap = tonumber(ARGV[11])
if to == 'HalfOpen' then
  redis.call('DEL', KEYS[3])
  if cap > 0 then
    redis.call('HSET', KEYS[3], 'version', string.format('%d', nv),
      'i:' .. ARGV[6], string.format('%d %d %d', cap, now, tonumber(ARGV[12])))
    redis.call('PEXPIRE', KEYS[3], ARGV[7])
    claimed = cap
  end
end
local msg = {endpoint=ARGV[10], version=nv, state=to, old_state=cur,
  open_until=tonumber(ARGV[4]), reason=ARGV[5], origin=ARGV[6], updated=upd}
if ARGV[14] ~= '' then
  msg.held_by, msg.hold_until = ARGV[14], tonumber(ARGV[15])
end
redis.call('PUBLISH', ARGV[9], cjson.encode(msg))
return {1, nv, cur, upd, claimed}
`)

// syncScript is one endpoint's share of a sync round: it stores this
// instance's window counts, sums the other instances' live counts and
// returns the state hash when its version differs from the one this
// instance knows.
//
// KEYS: 1 state hash, 2 window hash.
// ARGV: 1 instance, 2 total, 3 failed, 4 slow, 5 known version,
// 6 rolling window ms, 7 state TTL ms, 8 most entries to read, 9 "1" to
// return the state hash even at the known version.
//
// Returns {others' total, failed, slow, malformed entries removed, changed
// (0 or 1), {state field, value, ...} when changed}.
var syncScript = redis.NewScript(`
local st, win = KEYS[1], KEYS[2]
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
local known, winms = tonumber(ARGV[5]), tonumber(ARGV[6])
local ty = redis.call('TYPE', st).ok
local ver, epoch, ok = 0, 0, true
if ty == 'hash' then
  local h = redis.call('HMGET', st, 'version', 'window_epoch')
  local v = tonumber(h[1])
  if v then ver = v else ok = false end
  epoch = tonumber(h[2]) or 0
  redis.call('PEXPIRE', st, ARGV[7])
elseif ty ~= 'none' then
  ok = false
end
local bad = 0
local wty = redis.call('TYPE', win).ok
if wty ~= 'hash' and wty ~= 'none' then
  redis.call('DEL', win)
  bad = bad + 1
end
if known >= epoch then
  redis.call('HSET', win, ARGV[1], ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. ARGV[4] .. ' ' .. string.format('%d', now) .. ' ' .. ARGV[5])
  redis.call('PEXPIRE', win, 2 * winms)
end
local ot, of, os = 0, 0, 0
local items = redis.call('HGETALL', win)
local limit = tonumber(ARGV[8])
local n = 0
for i = 1, #items, 2 do
  local k = items[i]
  if k ~= ARGV[1] then
    n = n + 1
    if n > limit then break end
    local t, f, s, at, kv = string.match(items[i + 1], '^(%d+) (%d+) (%d+) (%d+) (%d+)$')
    t, f, s, at, kv = tonumber(t), tonumber(f), tonumber(s), tonumber(at), tonumber(kv)
    if not t or t > 1e12 or f > t or s > t then
      redis.call('HDEL', win, k)
      bad = bad + 1
    elseif now - at > winms or kv < epoch then
      redis.call('HDEL', win, k)
    else
      ot, of, os = ot + t, of + f, os + s
    end
  end
end
if ok and ver == known and ARGV[9] ~= '1' then return {ot, of, os, bad, 0} end
if ty == 'hash' then return {ot, of, os, bad, 1, redis.call('HGETALL', st)} end
if ty == 'none' then return {ot, of, os, bad, 1, {}} end
return {ot, of, os, bad, 1, {'_type', ty}}
`)

// claimScript claims half-open probe slots for this instance, out of a
// cluster-wide budget per half-open version. Each instance's claim is a
// lease: it records the slots held, when the instance last claimed or
// renewed them and its lease, and the slots of an instance silent for
// longer than its lease go back to the budget. An instance renews by
// asking again; asking for 0 gives its slots back.
//
// KEYS: 1 state hash, 2 probes hash.
// ARGV: 1 half-open version, 2 slots wanted in all (the instance's whole
// holding, not more on top of it), 3 budget, 4 lease ms, 5 instance,
// 6 key TTL ms.
//
// Returns the number of slots the instance holds now.
var claimScript = redis.NewScript(`
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return 0 end
local h = redis.call('HMGET', KEYS[1], 'version', 'state')
if h[1] ~= ARGV[1] or h[2] ~= 'HalfOpen' then return 0 end
local pk = KEYS[2]
local pty = redis.call('TYPE', pk).ok
if pty == 'hash' then
  if redis.call('HGET', pk, 'version') ~= ARGV[1] then redis.call('DEL', pk) end
elseif pty ~= 'none' then
  redis.call('DEL', pk)
end
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
local me = 'i:' .. ARGV[5]
local used = 0
local items = redis.call('HGETALL', pk)
for i = 1, #items, 2 do
  local k = items[i]
  if k ~= 'version' and k ~= me then
    local n, at, lease = string.match(items[i + 1], '^(%d+) (%d+) (%d+)$')
    n, at, lease = tonumber(n), tonumber(at), tonumber(lease)
    if not n or now - at > lease then
      redis.call('HDEL', pk, k) -- silent past its lease, or not a claim: the slots return
    else
      used = used + n
    end
  end
end
local n = math.max(math.min(tonumber(ARGV[2]), tonumber(ARGV[3]) - used), 0)
if n > 0 then
  redis.call('HSET', pk, 'version', ARGV[1], me, string.format('%d %d %d', n, now, tonumber(ARGV[4])))
  redis.call('PEXPIRE', pk, ARGV[6])
else
  redis.call('HDEL', pk, me)
end
return n
`)
