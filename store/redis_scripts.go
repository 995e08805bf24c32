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
// 14 held_by (a component hold's owner, or ""), 15 hold_until (Unix ms, or 0),
// 16 the change counter to increment (a single Redis only; see syncScript),
// or "".
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
if ARGV[16] ~= '' then redis.call('INCR', ARGV[16]) end
return {1, nv, cur, upd, claimed}
`)

// syncScript is a sync round for a batch of endpoints (all in one slot in
// Redis Cluster). For each it compares the state's and the settings'
// versions with the ones this instance knows and returns what changed,
// and, for an endpoint with calls in this instance's window, pushes its
// counts into the window aggregates and returns the cluster's window.
//
// The aggregates of an endpoint are one hash per bucket layout,
// {tag}:w2:<width ms>:<buckets>, over buckets of Redis time (floor(now /
// width)). Its values are little-endian float64s, all integers below 2^53
// (Lua's struct.pack: reading and writing them costs a fraction of text):
//
//	m          epoch, newest bucket, g (3), base (3), old (3): g counts
//	           every call pushed in the epoch (total, failed, slow), base
//	           is g as the window's oldest bucket began (the window is
//	           g - base), old the share of instances on the version 1
//	           format, read once per bucket
//	s<bucket>  g as that bucket began, the base of later windows
//	i:<id>     epoch, nonce, total, failed, slow, bucket: what instance id
//	           (in its life nonce) pushed since the epoch began, and when
//
// A push adds the difference between the instance's cumulative counts and
// the stored ones, at most what its window holds, so a push retried after a
// timeout adds nothing twice. It reads two fields and writes two, whatever
// the number of instances (m's 88 bytes keep the hash in Redis's hashtable
// encoding, whose lookups do not grow with its size). The first push of a
// bucket also writes the bucket's snapshot and moves the base, so a dead
// instance's share leaves within one window without anyone looking for it,
// and refreshes the hash's TTL, so an idle endpoint's expires. Once per
// window (every bucket while instances of the version 1 format are about)
// it reads their share and deletes the snapshots that left the window and
// the entries of instances silent for two windows: work in proportion to
// the number of instances, once per window, for one of them.
//
// On a single Redis, every winning compare-and-set and every settings put
// increments the change counter (RedisStore.changesKey), so a round in
// which it did not move reads no version at all: only the endpoints asked
// for (new, dirty, due a TTL refresh, after a gap in the subscription, and
// every 16th round) read theirs. In Redis Cluster, where a script cannot
// reach that key, every endpoint reads its versions every round.
//
// KEYS: the endpoints' hash tags ("{prefix:endpoint}", never used as keys
// themselves): their keys are in the same slot.
// ARGV: 1 this instance's field ("i:" .. id), 2 state TTL ms, 3 nonce,
// 4 the change counter or "", 5 its value at the last round that read
// every endpoint's versions ("" for none), 6 the batch's bucket layouts,
// each as the keys name it (":w2:<width>:<buckets>"), separated by
// spaces, then one per endpoint, packed: mode (byte; the sum of 1 push, 2
// return the state hash even at the known version, 4 refresh the state's
// TTL, 8 read the versions whatever the counter says), the known state
// and settings versions (doubles) and, for a push, the window epoch its
// counts belong to, its cumulative calls, failures and slow calls since
// then and the cumulative calls Redis last confirmed (doubles), the calls,
// failures and slow calls in its window (the most a push may add), the
// bucket width in ms and the number of buckets (uint32s), and which of the
// batch's layouts it uses (byte, from 1).
//
// Returns {Redis seconds, microseconds, the change counter (nil when
// absent or not given), item...}, an item for each endpoint with something
// to say. A push with nothing else to say is a string, packed: index
// (uint32), kind (byte), then for kind 0 (not pushed: the counts belong to
// an older epoch, or the aggregates are of a newer one than the state
// this instance knows) the epoch (double); for kind 1 (pushed, and this
// instance's entry held what it said Redis had confirmed) the newest
// bucket and the window, the other format's share included (doubles:
// 37 bytes); for kind 2 (pushed, anything else) also what the push added
// (uint32s), this instance's cumulative counts and bucket before the push
// (doubles; the bucket -1 without an entry) and the malformed entries
// removed (uint32): 85 bytes. Any other item is {index (from 1), state
// hash (pairs; {} for none; {"_type", type} for a key of another type) or
// nil when unchanged or not read, settings {version, settings, instance,
// at} or {"_type", type} or nil, and for a push that string}.
var syncScript = redis.NewScript(syncScriptSource)

const syncScriptSource = `
local tonumber, floor = tonumber, math.floor
local call, pcall, pack, unpk = redis.call, redis.pcall, struct.pack, struct.unpack
local me, ttl, nonce = ARGV[1], ARGV[2], tonumber(ARGV[3])
local tm = call('TIME')
local now = tonumber(tm[1]) * 1000 + floor(tonumber(tm[2]) / 1000)
local changes, readAll = false, true
if ARGV[4] ~= '' then
  changes = pcall('GET', ARGV[4])
  if type(changes) == 'table' then changes = false else readAll = (changes or '') ~= ARGV[5] end
end
local layouts = {}
for l in string.gmatch(ARGV[6], '%S+') do layouts[#layouts + 1] = l end
local out = {tonumber(tm[1]), tonumber(tm[2]), changes}
local nout = 3
local M = '<ddddddddddd'

-- A stored count: an integer from 0 to 2^53 (NaN fails every test).
local function n53(x) return x >= 0 and x <= 9007199254740992 and x == floor(x) end
local function c3(t, f, s) return n53(t) and n53(f) and n53(s) and f <= t and s <= t end

-- The window counts of instances still on the version 1 format: one hash
-- entry each, read once per bucket while such a hash exists.
local function oldWindow(tag, epoch, winms)
  local ow = tag .. ':window'
  local ty = call('TYPE', ow).ok
  if ty == 'none' then return 0, 0, 0, 0 end
  if ty ~= 'hash' then call('DEL', ow) return 0, 0, 0, 1 end
  local items = call('HGETALL', ow)
  local ot, of, os, bad = 0, 0, 0, 0
  local id = string.sub(me, 3)
  for j = 1, math.min(#items, 20000), 2 do
    local k = items[j]
    local t, f, s, at, kv = string.match(items[j + 1], '^(%d+) (%d+) (%d+) (%d+) (%d+)$')
    t, f, s, at, kv = tonumber(t), tonumber(f), tonumber(s), tonumber(at), tonumber(kv)
    if k == id then
      call('HDEL', ow, k) -- this instance's own, from before its upgrade
    elseif not t or t > 1e12 or f > t or s > t then
      call('HDEL', ow, k)
      bad = bad + 1
    elseif now - at <= winms and kv >= epoch then
      ot, of, os = ot + t, of + f, os + s
    end
  end
  return ot, of, os, bad
end

-- push adds one endpoint's counts; epoch is the state's window epoch, or
-- nil when the state was not read (the counts' own epoch then stands).
local function push(i, tag, epoch, arg, pos)
  local be, ct, cf, cs, conf, wt, wf, ws, width, n, l = unpk('<dddddI4I4I4I4I4B', arg, pos)
  local lay = layouts[l]
  if width < 1 or n < 1 or n > 1000 or not lay then return error('bulwark: bad window layout') end
  if epoch and be < epoch then return pack('<I4Bd', i, 0, epoch) end
  local ak = tag .. lay
  local idx = floor(now / width)
  local bad = 0
  local g = pcall('HMGET', ak, 'm', me)
  if g.err then
    call('DEL', ak)
    bad, g = 1, {}
  end
  local m = g[1]
  local e, hi, gt, gf, gs, bt, bf, bs, ot, of, os
  if m and #m == 88 then e, hi, gt, gf, gs, bt, bf, bs, ot, of, os = unpk(M, m) end
  if not epoch then
    if e and e > be and e <= 9007199254740992 then return pack('<I4Bd', i, 0, e) end
    epoch = be
  end
  -- The counts are checked when a bucket begins (below), and by the
  -- reader of the reply: here only what keeps the hash moving.
  if e ~= epoch or not (hi <= idx and hi > idx - 1e7) then
    -- Another epoch, none yet, or unreadable: start again.
    if m then
      if e == epoch or #m ~= 88 then bad = bad + 1 end
      call('DEL', ak)
    end
    hi, gt, gf, gs, bt, bf, bs, ot, of, os, g[2] = nil, 0, 0, 0, 0, 0, 0, 0, 0, 0, nil
  end
  local pt, pf, ps, pi, matched = 0, 0, 0, -1, false
  local prev = g[2]
  if prev then
    local pb, pn, x, y, z, w
    if #prev == 48 then pb, pn, x, y, z, w = unpk('<dddddd', prev) else bad = bad + 1 end
    if pb == be and pn == nonce then pt, pf, ps, pi, matched = x, y, z, w, true end
  end
  -- What the push adds: the counts since the stored ones, no fewer than
  -- none, no more than the window holds, no more failed or slow calls
  -- than calls.
  local dt, df, ds = ct - pt, cf - pf, cs - ps
  if dt < 0 then dt = 0 elseif dt > wt then dt = wt end
  if df < 0 then df = 0 elseif df > wf then df = wf end
  if ds < 0 then ds = 0 elseif ds > ws then ds = ws end
  if df > dt then df = dt end
  if ds > dt then ds = dt end
  if ct < pt then ct = pt end
  if cf < pf then cf = pf end
  if cs < ps then cs = ps end
  local mine = pack('<dddddd', be, nonce, ct, cf, cs, idx)
  if hi == idx then
    gt, gf, gs = gt + dt, gf + df, gs + ds
    call('HSET', ak, 'm', pack(M, epoch, hi, gt, gf, gs, bt, bf, bs, ot, of, os), me, mine)
  else
    -- The first push of a bucket: the snapshots of the buckets that
    -- begin, the window's base, the other format's share, and a check of
    -- every count.
    if hi and not (c3(gt, gf, gs) and c3(bt, bf, bs) and c3(ot, of, os) and bt <= gt) then
      call('DEL', ak)
      hi, gt, gf, gs, bad = nil, 0, 0, 0, bad + 1
    end
    local first = idx - n + 1
    local from = first
    if hi and hi + 1 > from then from = hi + 1 end
    local snap = pack('<ddd', gt, gf, gs)
    local set = {me, mine}
    for j = from, idx do set[#set + 1] = 's' .. j set[#set + 1] = snap end
    bt, bf, bs = gt, gf, gs
    if from > first then
      local v = call('HGET', ak, 's' .. first)
      local x, y, z
      if v and #v == 24 then x, y, z = unpk('<ddd', v) end
      if v and #v == 24 and c3(x, y, z) and x <= gt then bt, bf, bs = x, y, z else bad = bad + 1 end
    end
    if not hi or idx % n == 0 or ot > 0 then
      -- Once per window (and every bucket while instances of the version 1
      -- format are about): their share; the snapshots that left the
      -- window and the entries of instances silent for two windows.
      local obad
      ot, of, os, obad = oldWindow(tag, epoch, width * n)
      bad = bad + obad
      if hi then
        local dead = {}
        local all = call('HGETALL', ak)
        for j = 1, #all, 2 do
          local k, v = all[j], all[j + 1]
          local c = string.sub(k, 1, 2)
          if c == 'i:' and k ~= me then
            local w
            if #v == 48 then w = select(6, unpk('<dddddd', v)) end
            if not (w and w >= idx - 2 * n) then dead[#dead + 1] = k end
          elseif string.sub(c, 1, 1) == 's' and not (tonumber(string.sub(k, 2)) >= first) then
            dead[#dead + 1] = k
          end
        end
        if #dead > 0 then call('HDEL', ak, unpack(dead)) end
      end
    end
    hi = idx
    gt, gf, gs = gt + dt, gf + df, gs + ds
    set[#set + 1] = 'm'
    set[#set + 1] = pack(M, epoch, hi, gt, gf, gs, bt, bf, bs, ot, of, os)
    call('HSET', ak, unpack(set))
    call('PEXPIRE', ak, (n + 2) * width)
  end
  if matched and pt == conf and bad == 0 then
    return pack('<I4Bdddd', i, 1, hi, gt - bt + ot, gf - bf + of, gs - bs + os)
  end
  return pack('<I4BddddI4I4I4ddddI4', i, 2, hi, gt - bt + ot, gf - bf + of, gs - bs + os, dt, df, ds, pt, pf, ps, pi, bad)
end

for i = 1, #KEYS do
  local arg = ARGV[i + 6]
  local mode, known, sknown, pos = unpk('<Bdd', arg)
  local tag = KEYS[i]
  local state, set, epoch = false, false, nil
  if readAll or mode >= 2 then
    epoch = 0
    local st = tag .. ':state'
    local h = pcall('HMGET', st, 'version', 'window_epoch')
    if h.err then
      state = {'_type', call('TYPE', st).ok}
    else
      local v = tonumber(h[1])
      epoch = tonumber(h[2]) or 0
      if (h[1] and not v) or (h[2] and not h[1]) or (v or 0) ~= known or mode % 4 >= 2 then
        state = call('HGETALL', st)
      end
      if v and mode % 8 >= 4 then call('PEXPIRE', st, ttl) end
    end
    local sk = tag .. ':settings'
    local sv = pcall('HGET', sk, 'version')
    if type(sv) == 'table' then
      set = {'_type', call('TYPE', sk).ok}
    elseif sv and not (tonumber(sv) and tonumber(sv) <= sknown) then
      set = call('HMGET', sk, 'version', 'settings', 'instance', 'at')
    end
  end
  local p = false
  if mode % 2 == 1 then p = push(i, tag, epoch, arg, pos) end
  if state or set then
    nout = nout + 1
    out[nout] = {i, state, set, p}
  elseif p then
    nout = nout + 1
    out[nout] = p
  end
end
return out
`

// leaveScript takes this instance's pushes out of the window aggregates
// of a batch of endpoints, as it leaves: what it added to the buckets
// still in the window comes off g and off the snapshots taken after it,
// and its entry is deleted.
//
// KEYS: the endpoints' hash tags. ARGV: 1 this instance's field, 2
// nonce, then one per endpoint, packed: the window epoch of its counts
// (double), bucket width ms, buckets, k (uint32s), and k times bucket,
// total, failed, slow (doubles).
var leaveScript = redis.NewScript(`
local call, pcall, pack, unpk, floor, max = redis.call, redis.pcall, struct.pack, struct.unpack, math.floor, math.max
local me, nonce = ARGV[1], tonumber(ARGV[2])
local M = '<ddddddddddd'
for i = 1, #KEYS do
  local arg = ARGV[i + 2]
  local be, width, n, k, pos = unpk('<dI4I4I4', arg)
  if #arg ~= 20 + 32 * k then return error('bulwark: leave arguments of ' .. #arg .. ' bytes') end
  local ak = KEYS[i] .. ':w2:' .. width .. ':' .. n
  local g = pcall('HMGET', ak, 'm', me)
  if not g.err and g[2] and #g[2] == 48 and g[1] and #g[1] == 88 then
    local pb, pn = unpk('<dd', g[2])
    local m = {unpk(M, g[1])}
    local hi = m[2]
    if pb == be and pn == nonce and m[1] == be and hi == floor(hi) then
      local first = hi - n + 1
      local names, snaps = {}, {}
      for j = first + 1, hi do names[#names + 1] = 's' .. j end
      local vals = {}
      if #names > 0 then vals = call('HMGET', ak, unpack(names)) end
      for j = 1, #names do
        if vals[j] and #vals[j] == 24 then snaps[first + j] = {unpk('<ddd', vals[j])} end
      end
      for q = 1, k do
        local b, t, f, s
        b, t, f, s, pos = unpk('<dddd', arg, pos)
        if b >= first and b <= hi then
          m[3], m[4], m[5] = m[3] - t, m[4] - f, m[5] - s
          for j = b + 1, hi do
            local v = snaps[j]
            if v then v[1], v[2], v[3] = v[1] - t, v[2] - f, v[3] - s end
          end
        end
      end
      local set = {'m', pack(M, m[1], m[2], max(m[3], 0), max(m[4], 0), max(m[5], 0), m[6], m[7], m[8], m[9], m[10], m[11])}
      for j, v in pairs(snaps) do
        set[#set + 1] = 's' .. j
        set[#set + 1] = pack('<ddd', max(v[1], 0), max(v[2], 0), max(v[3], 0))
      end
      call('HSET', ak, unpack(set))
    end
  end
  if not g.err then call('HDEL', ak, me) end
end
return 1
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
