package store

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwark-go/bulwark/events"
)

// Every instance keeps a heartbeat in Redis: a field of one hash, its ID
// -> Redis's time when it was last seen, refreshed every sync round by the
// round trip that also follows the fault experiments (see roundScript).
// Every few seconds (membersPeriod) the same round trip reads the hash
// back, and the store publishes the instances as an events.StoreStatus
// "members", for the admin's cluster view. Entries of instances silent for
// memberTTL are removed as they are read; Close removes this instance's.

// statusMembers is the StoreStatus.Status of the list of instances.
const statusMembers = "members"

// maxMembers bounds the instances the hash holds and a round reads.
const maxMembers = 1000

// memberState is the worker's part of the heartbeat.
type memberState struct {
	readAt time.Time // when the next round reads the list
}

// roundScript refreshes this instance's heartbeat and reads, as asked,
// the instances and the fault experiments.
//
// KEYS: 1 members, 2 experiments' index, 3 their version.
// ARGV: 1 instance, 2 the silence (ms) after which an instance's entry is
// removed, 3 the most instances kept, 4 "1" to read the instances,
// 5 the most experiments read (0: not followed), 6 the version seen ("":
// read them whatever it is), 7 the experiments' key prefix.
//
// Returns {Redis time (s), µs, instances (ID, last seen (Unix ms) pairs)
// or nil, the experiments' version, 1 if their index is not a sorted set
// or 0, experiments (ID, end, JSON or "" for a key that is not a string)
// or nil when not read, how many the index holds}.
var roundScript = redis.NewScript(`
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
local mk, silent, maxm = KEYS[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local ty = redis.call('TYPE', mk).ok
if (ty ~= 'hash' and ty ~= 'none') or (ty == 'hash' and redis.call('HLEN', mk) > 2 * maxm) then
  redis.call('DEL', mk) -- not what instances write: they write it again
end
if redis.call('HLEN', mk) < maxm or redis.call('HEXISTS', mk, ARGV[1]) == 1 then
  redis.call('HSET', mk, ARGV[1], string.format('%d', now))
  redis.call('PEXPIRE', mk, silent)
end
local members = false
if ARGV[4] == '1' then
  members = {}
  local all = redis.call('HGETALL', mk)
  for i = 1, #all, 2 do
    local v = tonumber(all[i + 1])
    if v and v >= 0 and now - v <= silent and v <= now + silent and all[i + 1] == string.format('%d', v) then
      members[#members + 1] = all[i]
      members[#members + 1] = all[i + 1]
    else
      redis.call('HDEL', mk, all[i])
    end
  end
end
local ver, bad, list, total = '', 0, false, 0
local maxf = tonumber(ARGV[5])
if maxf > 0 then
  local ix, vk = KEYS[2], KEYS[3]
  local vty = redis.call('TYPE', vk).ok
  if vty == 'string' then ver = redis.call('GET', vk) elseif vty ~= 'none' then ver = '?' end
  local ity = redis.call('TYPE', ix).ok
  if ity == 'zset' then
    redis.call('ZREMRANGEBYSCORE', ix, '-inf', now)
    total = redis.call('ZCARD', ix)
  elseif ity ~= 'none' then
    bad = 1
  end
  if ARGV[6] == '' or ver ~= ARGV[6] then
    list = {}
    if ity == 'zset' then
      local ids = redis.call('ZRANGE', ix, 0, maxf - 1, 'WITHSCORES')
      for i = 1, #ids, 2 do
        local v = redis.pcall('GET', ARGV[7] .. ids[i])
        if v == false then
          redis.call('ZREM', ix, ids[i]) -- its key is gone: so is the experiment
          total = total - 1
        else
          if type(v) ~= 'string' then v = '' end
          list[#list + 1] = ids[i]
          list[#list + 1] = ids[i + 1]
          list[#list + 1] = v
        end
      end
    end
  end
end
return {tonumber(tm[1]), tonumber(tm[2]), members, ver, bad, list, total}
`)

// membersPeriod is how often the list of instances is read and
// published: the multiple of SyncInterval from 5s up.
func (s *RedisStore) membersPeriod() time.Duration {
	if s.cfg.membersEvery > 0 {
		return s.cfg.membersEvery
	}
	n := (5*time.Second + s.cfg.SyncInterval - 1) / s.cfg.SyncInterval
	return n * s.cfg.SyncInterval
}

// memberTTL is how long an instance stays listed after its last
// heartbeat: long enough to be listed unhealthy at least once.
func (s *RedisStore) memberTTL() time.Duration {
	return 2*s.membersPeriod() + 3*s.cfg.SyncInterval
}

// maxVersionLen bounds the experiments' version the store sends back.
const maxVersionLen = 64

// clusterRound is the worker's one round trip per sync round beyond the
// endpoints': the heartbeat, the list of instances every membersPeriod,
// and the fault experiments when their version moved. full reads the
// experiments whatever their version (after an outage, say).
func (s *RedisStore) clusterRound(full bool) {
	if !s.healthy.Load() || s.ctx.Err() != nil {
		return
	}
	fs := s.faults.Load()
	readMembers := !s.clock.Now().Before(s.members.readAt)
	maxFaults, seen := 0, ""
	var expected map[string]bool
	if fs != nil {
		s.drainFaultEvents(fs)
		fs.rounds++
		fs.full = fs.full || full
		maxFaults = fs.max
		if !fs.full && fs.rounds%checkEvery != 0 && len(fs.version) <= maxVersionLen {
			seen = fs.version
		}
		expected = make(map[string]bool, len(fs.known))
		for id, sf := range fs.known {
			if !sf.ended && (sf.written || !sf.local) {
				expected[id] = true
			}
		}
	}
	read := "0"
	if readMembers {
		read = "1"
	}
	k := s.ckeys
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.OpTimeout)
	before := s.clock.Now()
	v, err := roundScript.Run(ctx, s.client, []string{k.members, k.faults, k.version},
		s.cfg.InstanceID, s.memberTTL().Milliseconds(), maxMembers, read, maxFaults, seen, k.faultPrefix).Result()
	after := s.clock.Now()
	cancel()
	if err != nil {
		s.failed(nil, "share the heartbeat and fault experiments", err)
		return
	}
	r, err := parseRoundReply(v, maxFaults)
	if err != nil {
		s.report(nil, "cluster round", err)
		return
	}
	s.offset.Store(int64(s.rclock.sample(before, after, r.redisTime)))
	if r.membersRead {
		s.members.readAt = after.Add(s.membersPeriod())
		s.publishMembers(r)
	}
	if fs != nil {
		s.faultRound(fs, &r, expected)
	}
}

// publishMembers publishes the instances r listed, by ID.
func (s *RedisStore) publishMembers(r roundReply) {
	healthy := 3 * s.cfg.SyncInterval
	list := make([]events.Instance, 0, len(r.members))
	for _, m := range r.members {
		seen := time.UnixMilli(m.seen)
		list = append(list, events.Instance{
			ID: m.id, LastSeen: s.toLocal(seen).UTC(), Healthy: r.redisTime.Sub(seen) <= healthy,
			Self: m.id == s.cfg.InstanceID,
		})
		if m.id == s.cfg.InstanceID {
			list[len(list)-1].Shares = s.ownShares()
		}
	}
	slices.SortFunc(list, func(a, b events.Instance) int { return strings.Compare(a.ID, b.ID) })
	s.publish(events.StoreStatus{
		Type: events.TypeStoreStatus, Store: "redis", Instance: s.cfg.InstanceID, Status: statusMembers,
		Instances: list, Timestamp: s.clock.Now().UTC(),
	})
}

// ownShares is this instance's share of each shared rate limit, by
// endpoint, or nil when it shares none. The others' shares are theirs to
// tell: each instance knows its own demand and the cluster's only.
func (s *RedisStore) ownShares() map[string]float64 {
	var out map[string]float64
	for _, ep := range s.loaded() {
		if ep.quota.l == nil {
			continue
		}
		if out == nil {
			out = make(map[string]float64)
		}
		out[ep.name] = ep.quota.share
	}
	return out
}

// leaveMembers removes this instance's heartbeat, as it closes.
func (s *RedisStore) leaveMembers() {
	if !s.healthy.Load() || s.ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.OpTimeout)
	defer cancel()
	if err := s.client.HDel(ctx, s.ckeys.members, s.cfg.InstanceID).Err(); err != nil {
		s.failed(nil, "remove this instance's heartbeat", err)
	}
}

// roundReply is the round script's reply, parsed.
type roundReply struct {
	redisTime   time.Time
	membersRead bool
	members     []memberSeen
	version     string
	badIndex    bool
	faultsRead  bool
	faults      []faultRaw
	total       int64 // experiments the index holds
}

// memberSeen is an instance's heartbeat.
type memberSeen struct {
	id   string
	seen int64 // Unix ms, Redis's clock
}

// parseRoundReply parses and checks the round script's reply; an
// instance whose ID is not valid is left out. Experiments are checked one
// by one later (decodeFault), so that one bad entry spoils no other.
func parseRoundReply(v any, maxFaults int) (roundReply, error) {
	r, ok := v.([]any)
	if !ok || len(r) != 7 {
		return roundReply{}, malformed("round reply %.200v", v)
	}
	t, err := replyTime(r[0], r[1])
	if err != nil {
		return roundReply{}, err
	}
	out := roundReply{redisTime: t}
	switch m := r[2].(type) {
	case nil:
	case []any:
		if len(m)%2 != 0 || len(m) > 4*maxMembers {
			return roundReply{}, malformed("round reply: %d items of instances", len(m))
		}
		out.membersRead = true
		for i := 0; i < len(m); i += 2 {
			id, ok1 := m[i].(string)
			seen, ok2 := m[i+1].(string)
			n, err := strconv.ParseInt(seen, 10, 64)
			if !ok1 || !ok2 || err != nil || n < 0 {
				return roundReply{}, malformed("round reply: instance %.40v seen %.40v", m[i], m[i+1])
			}
			if validID(id) && len(out.members) < maxMembers {
				out.members = append(out.members, memberSeen{id, n})
			}
		}
	default:
		return roundReply{}, malformed("round reply: instances of type %T", m)
	}
	if out.version, ok = r[3].(string); !ok {
		return roundReply{}, malformed("round reply: version of type %T", r[3])
	}
	bad, err := replyInt(r[4], "round reply: index state", 0, 1)
	if err != nil {
		return roundReply{}, err
	}
	out.badIndex = bad == 1
	if out.total, err = replyInt(r[6], "round reply: experiments held", 0, 1<<53); err != nil {
		return roundReply{}, err
	}
	switch l := r[5].(type) {
	case nil:
	case []any:
		if len(l)%3 != 0 || len(l) > 3*maxFaults {
			return roundReply{}, malformed("round reply: %d items of experiments for at most %d", len(l), maxFaults)
		}
		out.faultsRead = true
		for i := 0; i < len(l); i += 3 {
			id, ok1 := l[i].(string)
			score, ok2 := l[i+1].(string)
			payload, ok3 := l[i+2].(string)
			if !ok1 || !ok2 || !ok3 {
				return roundReply{}, malformed("round reply: experiment %.40v of types %T %T", l[i], l[i+1], l[i+2])
			}
			out.faults = append(out.faults, faultRaw{id: id, score: score, payload: payload})
		}
	default:
		return roundReply{}, malformed("round reply: experiments of type %T", l)
	}
	return out, nil
}
