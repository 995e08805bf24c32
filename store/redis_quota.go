package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwark-go/bulwark/core"
)

// Cluster-wide rate limits (core.RateLimitConfig.Shared), by the policy
// core.Quota documents. Every sync round an instance adds its demand on
// each shared endpoint (the calls its limiter allowed and refused since
// the last round, plus one per SyncInterval) to aggregates per time
// bucket, one SyncInterval wide, of Redis's time as the instance reckons
// it: the demand since the last round is spread over the buckets it came
// in, in proportion to the time it spent in each, so that a bucket holds
// what the cluster asked for during that time whatever the phase of each
// instance's rounds. Two buckets back from the current one, every
// instance has added its part; the instance reads that bucket's total and
// takes as its share what it added there itself over the total. Each
// round adds to two buckets, rarely three, and reads one, whatever the
// number of instances, in a script queued in the sync round's pipeline:
// no round trip of its own, and no call per request.

// quotaLag is how many buckets before the current one the bucket read is:
// the one before the current may still get the part of an instance whose
// round in the current bucket is still to come.
const quotaLag = 2

// quotaRing is how many buckets an instance remembers its part of.
const quotaRing = 4

// maxQuotaAdds is the most buckets one push adds to: a round late by up
// to two intervals spreads its demand over three, which may touch four.
const maxQuotaAdds = 4

// quotaTau is the decay time toward an even split while Redis is
// unreachable, in sync intervals.
const quotaTau = 10

// maxQuotaDemand bounds a bucket's demand read back: more calls than any
// cluster serves in a minute-long bucket; it keeps the arithmetic finite.
const maxQuotaDemand = 1e15

// maxQuotaInstances bounds a bucket's instance count read back.
const maxQuotaInstances = 1_000_000

// quotaBucket is what this instance added to one bucket.
type quotaBucket struct {
	idx   int64
	d     float64
	valid bool
}

// quotaState is this instance's part in an endpoint's shared limit. e is
// set when the endpoint is attached through AttachManager; the rest is
// the worker's.
type quotaState struct {
	e atomic.Pointer[core.Endpoint]
	quotaShare
}

// quotaShare is what the worker knows of a shared limit, started again
// when the limiter changes.
type quotaShare struct {
	l       *core.RateLimiter // the limiter shared; nil when none is
	share   float64           // the share last set
	sized   bool              // share came from the cluster's demand at least once
	n       int               // instances last seen sharing, this one included; 0 when unknown
	at      time.Time         // when share was last set or decayed, on the store's clock
	from    int64             // Redis Unix ms where the next push's demand starts; 0: the next round starts counting
	counted int64             // the newest bucket this instance counted itself in
	own     [quotaRing]quotaBucket
}

// ownAt is what this instance added to bucket idx, if it remembers.
func (q *quotaState) ownAt(idx int64) (float64, bool) {
	b := q.own[uint64(idx)%quotaRing]
	return b.d, b.valid && b.idx == idx
}

// addOwn records d added to bucket idx.
func (q *quotaState) addOwn(idx int64, d float64) {
	b := &q.own[uint64(idx)%quotaRing]
	if !b.valid || b.idx != idx {
		*b = quotaBucket{idx: idx, valid: true}
	}
	b.d += d
}

// restart forgets the pushes in flight: the next round only starts
// counting again (its demand since the last is discarded).
func (q *quotaState) restart() {
	q.from = 0
	q.own = [quotaRing]quotaBucket{}
}

// quotaAdd is one bucket's part of a push.
type quotaAdd struct {
	idx   int64
	d     float64
	count bool // the first time this instance adds to the bucket: it counts itself in
}

// quotaPush is what a round sends and asks for one shared endpoint.
type quotaPush struct {
	ep   *redisEndpoint
	now  int64 // Redis Unix ms of the round, as this instance reckons it
	read int64 // the bucket read
	adds []quotaAdd
}

// quotaRound is a round's pushes, their batches and their commands.
type quotaRound struct {
	pushes  []quotaPush
	batches [][]int
	cmds    []*redis.Cmd
}

// followQuota lets the store share e's rate limit when it is Shared:
// AttachManager calls it for each endpoint it attached.
func (s *RedisStore) followQuota(e *core.Endpoint) {
	if ep := s.lookup(e.Name()); ep != nil && ep.b == e.Breaker() {
		ep.quota.e.Store(e)
	}
}

// sharedLimit returns ep's rate limiter when it is to be shared now. A
// limiter that stops being shared (or is replaced) gets its whole limit
// back.
func (s *RedisStore) sharedLimit(ep *redisEndpoint) *core.RateLimiter {
	q := &ep.quota
	var l *core.RateLimiter
	if e := q.e.Load(); e != nil {
		if l = e.RateLimiter(); l != nil {
			if rl := e.Config().RateLimit; rl == nil || !rl.Shared {
				l = nil
			}
		}
	}
	if l != q.l {
		s.endQuota(ep)
		if l != nil {
			q.quotaShare = quotaShare{l: l, share: 1, at: s.clock.Now(), counted: -1}
		}
	}
	return l
}

// endQuota gives ep's limiter its whole limit back: the store stops
// sharing it.
func (s *RedisStore) endQuota(ep *redisEndpoint) {
	q := &ep.quota
	if q.l == nil {
		return
	}
	core.QuotaOf(q.l).SetShare(1)
	q.quotaShare = quotaShare{}
}

// planQuotas reads the demand of every shared endpoint of eps and makes
// the round's pushes.
func (s *RedisStore) planQuotas(eps []*redisEndpoint) *quotaRound {
	var r *quotaRound
	w := s.cfg.SyncInterval.Milliseconds()
	now := s.redisNow().UnixMilli()
	for _, ep := range eps {
		l := s.sharedLimit(ep)
		if l == nil {
			continue
		}
		if r == nil {
			r = &quotaRound{}
		}
		q := &ep.quota
		allowed, refused := core.QuotaOf(l).Demand()
		p := quotaPush{ep: ep, now: now, read: now/w - quotaLag}
		if q.from > 0 {
			p.adds = spread(q.from, now, w, float64(allowed+refused), q.counted)
		}
		r.pushes = append(r.pushes, p)
	}
	return r
}

// spread divides calls made from Redis time from to now (Unix ms) among
// the buckets of width w ms they came in, in proportion to the time spent
// in each, with one call more per w (the policy's idle share). A span
// longer than three buckets is taken as the last three (a round that came
// very late). Buckets past counted are the instance's first adds to them.
func spread(from, now, w int64, calls float64, counted int64) []quotaAdd {
	from = min(max(from, now-3*w), now-1)
	span := float64(now - from)
	d := calls + span/float64(w)
	adds := make([]quotaAdd, 0, maxQuotaAdds)
	for b := from / w; b <= (now-1)/w; b++ {
		part := float64(min(now, (b+1)*w)-max(from, b*w)) / span
		adds = append(adds, quotaAdd{idx: b, d: d * part, count: b > counted})
	}
	return adds
}

// queueQuotas puts the round's quota script calls on pipe, in batches as the
// sync script's.
func (s *RedisStore) queueQuotas(ctx context.Context, pipe redis.Pipeliner, r *quotaRound) {
	if r == nil {
		return
	}
	if r.batches == nil {
		eps := make([]*redisEndpoint, len(r.pushes))
		for i, p := range r.pushes {
			eps[i] = p.ep
		}
		r.batches = s.batches(eps)
	}
	r.cmds = r.cmds[:0]
	w := s.cfg.SyncInterval.Milliseconds()
	for _, b := range r.batches {
		keys := make([]string, len(b))
		args := make([]any, 2, 2+len(b))
		args[0], args[1] = w, (quotaLag+2)*w
		for j, i := range b {
			p := r.pushes[i]
			keys[j] = p.ep.keys.tag
			buf := appendF64(make([]byte, 0, 9+17*len(p.adds)), p.read)
			buf = append(buf, byte(len(p.adds)))
			for _, a := range p.adds {
				buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(float64(a.idx)))
				buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(a.d))
				c := byte(0)
				if a.count {
					c = 1
				}
				buf = append(buf, c)
			}
			args = append(args, buf)
		}
		r.cmds = append(r.cmds, quotaScript.EvalSha(ctx, pipe, keys, args...))
	}
}

// quotaCmds returns the round's commands, for the round's check of a
// flushed script cache.
func (r *quotaRound) quotaCmds() []*redis.Cmd {
	if r == nil {
		return nil
	}
	return r.cmds
}

// applyQuotas sets each shared endpoint's share from what the round read.
func (s *RedisStore) applyQuotas(r *quotaRound) {
	if r == nil {
		return
	}
	for bi, b := range r.batches {
		v, err := r.cmds[bi].Result()
		var reads []quotaRead
		if err == nil {
			reads, err = parseQuotaReply(v, len(b))
		}
		for j, i := range b {
			p := &r.pushes[i]
			if err != nil {
				s.quotaLost(p)
				if !isConnErr(err) {
					s.report(p.ep, "shared rate limit", err)
				}
				continue
			}
			s.applyQuota(p, reads[j])
		}
	}
}

// quotaLost handles a push whose fate is unknown: counted as made for the
// instance count, forgotten for the share (the next round starts again).
func (s *RedisStore) quotaLost(p *quotaPush) {
	q := &p.ep.quota
	for _, a := range p.adds {
		q.counted = max(q.counted, a.idx)
	}
	q.restart()
}

// applyQuota takes in one endpoint's reply.
func (s *RedisStore) applyQuota(p *quotaPush, rd quotaRead) {
	q := &p.ep.quota
	if q.l == nil {
		return // no longer shared: its limit was given back
	}
	if rd.err != nil {
		s.report(p.ep, "shared rate limit", rd.err)
	} else if rd.removed > 0 {
		s.report(p.ep, "shared rate limit", fmt.Errorf("%w: removed %d malformed demand buckets of %s", errMalformed, rd.removed, p.ep.name))
	}
	for _, a := range p.adds {
		q.addOwn(a.idx, a.d)
		q.counted = max(q.counted, a.idx)
	}
	q.from = p.now
	if rd.err != nil {
		return // the share stands
	}
	share := q.share
	own, ok := q.ownAt(p.read)
	switch {
	case ok && own > 0 && rd.d >= own*(1-1e-9):
		share, q.sized, q.n = own/max(rd.d, own), true, max(rd.n, 1)
	case ok && own > 0:
		// The bucket lost what this instance added (Redis restarted or
		// was flushed): nothing to go by.
	case rd.n > 0 && !q.sized:
		// Too new here to have a part in the bucket: an even part among
		// the instances that do.
		share, q.n = 1/float64(rd.n+1), rd.n+1
	}
	s.setShare(q, share)
}

// setShare puts share in force on q's limiter.
func (s *RedisStore) setShare(q *quotaState, share float64) {
	q.share, q.at = share, s.clock.Now()
	core.QuotaOf(q.l).SetShare(share)
}

// decayQuotas moves every shared endpoint's share toward an even split
// among the instances last seen, while Redis is unreachable: a tick's
// part of share += (1/N − share) × (1 − e^(−Δt/τ)). The demand meanwhile
// is discarded.
func (s *RedisStore) decayQuotas() {
	tau := float64(quotaTau * s.cfg.SyncInterval)
	now := s.clock.Now()
	for _, ep := range s.endpoints() {
		l := s.sharedLimit(ep)
		if l == nil {
			continue
		}
		q := &ep.quota
		core.QuotaOf(l).Demand()
		q.restart()
		even := 1 / float64(max(q.n, 1))
		dt := float64(max(now.Sub(q.at), 0))
		s.setShare(q, q.share+(even-q.share)*(1-math.Exp(-dt/tau)))
	}
}

// quotaRead is what the quota script read of one endpoint's bucket.
type quotaRead struct {
	d       float64 // the cluster's demand in it
	n       int     // the instances that added to it
	removed int64   // malformed buckets the script deleted
	err     error   // why the bucket read is not valid
}

// parseQuotaReply parses the quota script's reply for a batch of n
// endpoints: one {demand or nil, instances or nil, removed} each. A
// defect in one endpoint's bucket is that item's error; a defect in the
// reply's shape is the error.
func parseQuotaReply(v any, n int) ([]quotaRead, error) {
	r, ok := v.([]any)
	if !ok || len(r) != n {
		return nil, malformed("quota reply %.200v for %d endpoints", v, n)
	}
	out := make([]quotaRead, n)
	for i, x := range r {
		it, ok := x.([]any)
		if !ok || len(it) != 3 {
			return nil, malformed("quota reply item %.100v", x)
		}
		removed, err := replyInt(it[2], "malformed quota buckets", 0, maxQuotaAdds+1)
		if err != nil {
			return nil, err
		}
		out[i] = readQuotaBucket(it[0], it[1])
		out[i].removed = removed
	}
	return out, nil
}

// readQuotaBucket validates a bucket's fields as the script read them.
func readQuotaBucket(d, n any) quotaRead {
	var rd quotaRead
	if d != nil {
		s, ok := d.(string)
		x, err := strconv.ParseFloat(s, 64)
		if !ok || err != nil || !(x >= 0 && x <= maxQuotaDemand) {
			return quotaRead{err: malformed("quota bucket demand %.40v", d)}
		}
		rd.d = x
	}
	if n != nil {
		s, ok := n.(string)
		x, err := strconv.ParseInt(s, 10, 64)
		if !ok || err != nil || x < 0 || x > maxQuotaInstances {
			return quotaRead{err: malformed("quota bucket instance count %.40v", n)}
		}
		rd.n = int(x)
	}
	if rd.d > 0 && rd.n == 0 {
		return quotaRead{err: malformed("quota bucket with demand %v and no instance", rd.d)}
	}
	return rd
}

// quotaScript adds this instance's demand to the buckets of a batch of
// shared endpoints and reads one bucket of each (see planQuotas). A
// bucket is the hash {tag}:q:<width ms>:<bucket>: d, the demand (a
// float), and n, the instances that added to it; each instance refreshes
// its TTL as it first adds to it. A bucket that is not such a hash is
// deleted and started again.
//
// KEYS: the endpoints' hash tags. ARGV: 1 bucket width ms, 2 bucket TTL
// ms, then one per endpoint, packed: the bucket to read (double), k
// (byte), and k times bucket, demand (doubles), first (byte: 1 when this
// instance adds to the bucket for the first time).
//
// Returns {demand or nil, instances or nil, buckets deleted} per endpoint.
var quotaScript = redis.NewScript(`
local call, pcall, unpk = redis.call, redis.pcall, struct.unpack
local width, ttl = ARGV[1], ARGV[2]
local out = {}
for i = 1, #KEYS do
  local arg = ARGV[i + 2]
  local read, k, pos = unpk('<dB', arg)
  if #arg ~= 9 + 17 * k then return error('bulwark: quota arguments of ' .. #arg .. ' bytes') end
  local pre = KEYS[i] .. ':q:' .. width .. ':'
  local bad = 0
  for j = 1, k do
    local b, d, first
    b, d, first, pos = unpk('<ddB', arg, pos)
    local key = pre .. string.format('%d', b)
    local function add()
      local r = pcall('HINCRBYFLOAT', key, 'd', d)
      if type(r) == 'table' and r.err then return false end
      if first == 1 then
        r = pcall('HINCRBY', key, 'n', 1)
        if type(r) == 'table' and r.err then return false end
        call('PEXPIRE', key, ttl)
      end
      return true
    end
    if not add() then
      call('DEL', key)
      bad = bad + 1
      first = 1
      add()
    end
  end
  local key = pre .. string.format('%d', read)
  local r = pcall('HMGET', key, 'd', 'n')
  if r.err then
    call('DEL', key)
    bad = bad + 1
    r = {false, false}
  end
  out[i] = {r[1], r[2], bad}
end
return out
`)
