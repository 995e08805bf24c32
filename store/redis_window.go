package store

import (
	"encoding/binary"
	"github.com/bulwark-go/bulwark/events"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/bulwark-go/bulwark/core"
)

// The cluster's rolling window is kept in Redis as aggregates per time
// bucket (see syncScript), so that a sync costs Redis the same whatever
// the number of instances. The store feeds them from the breaker's
// lifetime counts: what was recorded since the last push, at most what the
// breaker's own window holds, goes into the bucket of Redis's current
// time. It remembers how much it added to each bucket, so that the
// others' share is the cluster's window less its own, and its own window
// (fresher than what it pushed) is counted by the breaker itself.

// counts3 is calls, failures and slow calls.
type counts3 struct{ total, failed, slow int64 }

func (c counts3) plus(o counts3) counts3 {
	return counts3{c.total + o.total, c.failed + o.failed, c.slow + o.slow}
}

func (c counts3) minus(o counts3) counts3 {
	return counts3{c.total - o.total, c.failed - o.failed, c.slow - o.slow}
}

// clean makes c a possible window: no negative count, no more failed or
// slow calls than calls.
func (c counts3) clean() counts3 {
	c.total = max(c.total, 0)
	c.failed = min(max(c.failed, 0), c.total)
	c.slow = min(max(c.slow, 0), c.total)
	return c
}

// capped is c cut, count by count, to at most limit.
func (c counts3) capped(limit counts3) counts3 {
	return counts3{min(c.total, limit.total), min(c.failed, limit.failed), min(c.slow, limit.slow)}
}

// windowLayout is how an endpoint's window is cut into Redis buckets.
// Instances whose breakers are configured alike use the same layout, and
// so the same aggregates.
type windowLayout struct {
	width int64 // bucket width, ms
	n     int64 // buckets in the window
}

// maxRedisBuckets bounds the buckets of a window in Redis: a push that
// moves past many evicts at most that many.
const maxRedisBuckets = 20

// suffix is how the aggregates' key names the layout, after the tag.
func (l windowLayout) suffix() string {
	return ":w2:" + strconv.FormatInt(l.width, 10) + ":" + strconv.FormatInt(l.n, 10)
}

func layoutOf(cfg core.BreakerConfig) windowLayout {
	n := int64(min(max(cfg.WindowBuckets, 1), maxRedisBuckets))
	return windowLayout{width: max(cfg.RollingWindow.Milliseconds()/n, 1), n: n}
}

// ownBucket is what this instance added to one Redis bucket.
type ownBucket struct {
	idx int64
	c   counts3
}

// aggState is an endpoint's share in the window aggregates, as this
// instance knows it. Touched by the worker only.
type aggState struct {
	layout  windowLayout
	epoch   uint64  // the window epoch the counts belong to
	started bool    // base is set
	base    counts3 // the breaker's lifetime counts at the last push
	cum     counts3 // counts since the epoch began, as the next push sends them
	conf    counts3 // cum as Redis confirmed it
	unsure  bool    // a push was sent whose reply never came
	own     []ownBucket
	active  bool // the last round pushed: the breaker has the others' share
}

// restart forgets this instance's share: a new epoch (the cluster closed
// the breaker, which empties its window) or a new layout. The next push
// starts from the breaker's window.
func (a *aggState) restart(epoch uint64) {
	*a = aggState{layout: a.layout, epoch: epoch, active: a.active}
}

// planPush prepares ep's push: the counts since the epoch began, and the
// most the push may add (the breaker's window). It reports false when the
// endpoint sends nothing: no calls in the breaker's window, or a breaker
// that is not Closed (whose calls no threshold counts, and which the next
// Closed empties).
func (s *RedisStore) planPush(ep *redisEndpoint) (win counts3, ok bool) {
	if ep.b.State() != events.Closed {
		return counts3{}, false
	}
	t, f, sl := ep.rep.windowCounts()
	win = counts3{t, f, sl}.clean()
	if win.total == 0 {
		return counts3{}, false
	}
	a := &ep.agg
	if l := layoutOf(ep.b.Config()); l != a.layout {
		a.layout = l
		a.restart(a.epoch)
	}
	snap := ep.b.Snapshot()
	life := counts3{snap.TotalRequests, snap.FailedRequests, snap.SlowRequests}.clean()
	if !a.started {
		// What the window holds is news; what it no longer holds is not.
		a.base, a.started = life.minus(win).clean(), true
	}
	a.cum = a.cum.plus(life.minus(a.base).clean().capped(win))
	a.base = life
	return win, true
}

// pushResult is the sync script's reply to a push.
type pushResult struct {
	pushed bool
	// confirmed: this instance's entry held what it said Redis had
	// confirmed, so added and prev are what it can tell itself.
	confirmed bool
	epoch     uint64  // when not pushed: the epoch the counts are older than
	idx       int64   // the bucket the push went into: the newest
	window    counts3 // the cluster's window, this instance's pushes and the version 1 format's share included
	added     counts3 // what this push added
	removed   int64   // malformed entries removed
	prev      *prevEntry
}

// prevEntry is this instance's entry in the aggregates before a push,
// when it had one for this epoch and life.
type prevEntry struct {
	cum counts3
	idx int64
}

// added is what syncScript adds for a push of cum, at most win, onto
// prev: the same formula, for the replies that leave it out.
func added(cum, win, prev counts3) counts3 {
	t := min(max(cum.total-prev.total, 0), win.total)
	return counts3{t, min(max(cum.failed-prev.failed, 0), win.failed, t), min(max(cum.slow-prev.slow, 0), win.slow, t)}
}

// applyPush records the reply to a push of a.cum, at most win, and
// returns the other instances' share of the window.
func (a *aggState) applyPush(r pushResult, win counts3) counts3 {
	if r.confirmed {
		r.prev = &prevEntry{cum: a.conf, idx: -1}
		r.added = added(a.cum, win, a.conf)
	}
	var prev counts3
	if r.prev != nil {
		prev = r.prev.cum
	}
	switch {
	case r.prev == nil && a.conf.total > 0:
		// Redis lost what this instance pushed (restarted, flushed, or
		// the aggregates started again): nothing of it is left to count.
		a.own = nil
	case r.prev != nil && a.unsure && prev.total > a.conf.total:
		// A push whose reply was lost went through, into the bucket its
		// entry names: count what it added.
		a.addOwn(r.prev.idx, prev.minus(a.conf).clean())
	}
	a.unsure = false
	a.addOwn(r.idx, r.added)
	a.conf = counts3{max(a.cum.total, prev.total), max(a.cum.failed, prev.failed), max(a.cum.slow, prev.slow)}
	a.cum = a.conf
	// Buckets that fell out of Redis's window fell out of ours.
	a.own = slices.DeleteFunc(a.own, func(b ownBucket) bool { return b.idx <= r.idx-a.layout.n })
	var mine counts3
	for _, b := range a.own {
		mine = mine.plus(b.c)
	}
	return r.window.minus(mine).clean()
}

func (a *aggState) addOwn(idx int64, c counts3) {
	if c == (counts3{}) {
		return
	}
	for i := range a.own {
		if a.own[i].idx == idx {
			a.own[i].c = a.own[i].c.plus(c)
			return
		}
	}
	a.own = append(a.own, ownBucket{idx, c})
	if len(a.own) > maxRedisBuckets+1 {
		a.own = a.own[len(a.own)-maxRedisBuckets-1:]
	}
}

// leaveArgs are the leave script's keys and arguments for the endpoints
// eps[i] of batch: what this instance added to each bucket it knows of.
func (s *RedisStore) leaveArgs(eps []*redisEndpoint, batch []int) ([]string, []any) {
	keys := make([]string, len(batch))
	args := []any{s.aggField(), s.nonce}
	for j, i := range batch {
		a := &eps[i].agg
		keys[j] = eps[i].keys.tag
		b := make([]byte, 0, 20+32*len(a.own))
		b = appendF64(b, int64(a.epoch))
		b = binary.LittleEndian.AppendUint32(b, uint32(a.layout.width))
		b = binary.LittleEndian.AppendUint32(b, uint32(a.layout.n))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(a.own)))
		for _, o := range a.own {
			b = appendF64(b, o.idx, o.c.total, o.c.failed, o.c.slow)
		}
		args = append(args, b)
	}
	return keys, args
}

// aggField is this instance's field in the aggregates.
func (s *RedisStore) aggField() string { return "i:" + s.cfg.InstanceID }

// appendF64 appends each of vs as a little-endian float64 (exact below
// 2^53), as Lua's struct.pack('<d') writes it.
func appendF64(b []byte, vs ...int64) []byte {
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(float64(v)))
	}
	return b
}

// newEpoch starts ep's counts again: the cluster closed or disabled the
// breaker at version v (its window epoch), which empties every instance's
// window.
func (s *RedisStore) newEpoch(ep *redisEndpoint, v uint64) {
	ep.agg.active = false // the others' share is forgotten with it
	if v > ep.agg.epoch {
		ep.agg.restart(v)
	}
}

// offsetSamples is how many recent estimates of Redis's clock the store
// keeps; it uses the one measured over the shortest round trip.
const offsetSamples = 8

// redisClock estimates Redis's clock from this instance's: the offset to
// add to a local time for Redis's. An offset within deadBand of zero is
// taken as zero, so that instances whose clocks agree with Redis's share
// times to the millisecond. Touched by the worker only, but read by the
// other goroutines through RedisStore.offset.
type redisClock struct {
	samples [offsetSamples]struct {
		offset, rtt time.Duration
		ok          bool
	}
	next     int
	applied  time.Duration
	deadBand time.Duration
}

// sample adds an estimate: Redis said redis between the local times
// before and after, and returns the offset to apply now.
func (c *redisClock) sample(before, after, redis time.Time) time.Duration {
	rtt := after.Sub(before)
	if rtt < 0 {
		return c.applied
	}
	mid := before.Add(rtt / 2)
	c.samples[c.next] = struct {
		offset, rtt time.Duration
		ok          bool
	}{redis.Sub(mid), rtt, true}
	c.next = (c.next + 1) % offsetSamples
	best := -1
	for i, s := range c.samples {
		if s.ok && (best < 0 || s.rtt < c.samples[best].rtt) {
			best = i
		}
	}
	off := c.samples[best].offset
	switch {
	case off.Abs() < c.deadBand/2:
		c.applied = 0
	case off.Abs() < c.deadBand && c.applied == 0:
		// Within the band, and not correcting yet: leave it.
	default:
		c.applied = off
	}
	return c.applied
}
