package core

import (
	"container/heap"
	"context"
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark/internal/check"
)

// maxUserIDLen bounds a user ID in bytes, so that the user table's memory
// stays bounded along with its entry count.
const maxUserIDLen = 256

// PerUserConfig configures a PerUserBulkhead. The zero value is the default;
// every zero field takes the default written beside it.
type PerUserConfig struct {
	// Bulkhead is the bulkhead each user gets: by default 100 slots and a
	// queue of 10 with a 5s timeout per user. Bulkhead.Disabled turns
	// per-user limiting off: every call gets a slot and no user is tracked.
	// Its Name and Clock are ignored.
	Bulkhead BulkheadConfig
	// MaxUsers bounds how many users are tracked at once. Default 10,000;
	// 1 to 100,000,000. The bound is kept per shard (each holds
	// MaxUsers/Shards users), so a new user can meet ErrTooManyUsers while
	// other shards still have room.
	MaxUsers int
	// IdleTimeout is how long a user with nothing held or queued stays
	// tracked before it may be evicted. Default 5m; 1ms to 24h. A user is
	// also evicted before that, least recently used first, when a new user
	// needs its place.
	IdleTimeout time.Duration
	// TopN is how many users TopUsers reports. Default 20; 1 to 10,000.
	TopN int
	// Shards is how many independently locked parts the user table is split
	// into. Default 64; a power of two from 1 to 65,536, and no more than
	// MaxUsers (it is lowered to fit).
	Shards int
	// Clock times queues and idle users. Nil means SystemClock. A Manager
	// sets its own.
	Clock Clock
}

// normalize fills every zero field with its default and reports every
// field out of range into c.
func (cfg PerUserConfig) normalize(c *check.Checker) PerUserConfig {
	if cfg.Clock == nil {
		cfg.Clock = SystemClock()
	}
	cfg.Bulkhead.Clock = cfg.Clock
	cfg.Bulkhead = cfg.Bulkhead.normalize(c.Sub("Bulkhead"))
	c.Int("MaxUsers", &cfg.MaxUsers, 10_000, 1, 100_000_000)
	c.Duration("IdleTimeout", &cfg.IdleTimeout, 5*time.Minute, time.Millisecond, 24*time.Hour)
	c.Int("TopN", &cfg.TopN, 20, 1, 10_000)
	cfg.Shards = userShards(c, cfg.Shards, cfg.MaxUsers)
	return cfg
}

// userShards checks a per-user table's shard count (a power of two;
// default 64) and halves it until no shard is left without a user's room.
func userShards(c *check.Checker, shards, maxUsers int) int {
	if shards == 0 {
		shards = 64
	} else if shards < 1 || shards > 1<<16 || shards&(shards-1) != 0 {
		c.Fail("Shards", shards, "must be a power of two between 1 and 65536 (0 means the default, 64)")
		return shards
	}
	for shards > 1 && maxUsers > 0 && shards > maxUsers {
		shards /= 2
	}
	return shards
}

// PerUserBulkhead gives every user a bulkhead of their own, so that one user
// cannot take every slot of a service. It is safe for concurrent use.
//
// Users are tracked in a table bounded by MaxUsers and split into shards by
// a hash of the user ID, each with its own lock, so calls for different
// users rarely meet. A user already tracked costs no allocation to acquire
// and release. Users with nothing held or queued are evicted lazily: when a
// new user needs room (expired users first, else the least recently used of
// a sample), and a few expired ones on every insert. No goroutine is
// needed. A user holding or waiting for a slot is never evicted.
//
// User IDs are never put in errors and must never become metric labels
// (there is no bound on them): export Stats, which sums over all users, and
// show UserStats and TopUsers in an admin view instead.
type PerUserBulkhead struct {
	cfg      PerUserConfig
	disabled bool
	clock    Clock
	seed     maphash.Seed
	mask     uint64
	shards   []userShard
	tooMany  atomic.Uint64
	rejected [2]*RejectedError // shared by every user's bulkhead
}

// userShard is one lock's worth of the user table.
type userShard struct {
	mu    sync.RWMutex
	users map[string]*userEntry
	limit int
	// Counters of evicted users, so that the aggregate stays monotonic.
	retired BulkheadStats
	evicted uint64
	_       [64]byte
}

// userEntry is one tracked user.
//
// Every change that makes an entry busy (taking a slot, queueing) happens
// under its shard's read lock, and eviction checks idleness under the write
// lock, so an entry found idle there stays idle until it is gone. Only
// holders of the shard's lock look entries up, so an evicted entry can be
// reused for a new user.
type userEntry struct {
	user string
	lim  bulkLimiter
	one  [1]bulkStripe
}

// NewPerUserBulkhead returns a per-user bulkhead, or every field of cfg
// that is out of range as *ConfigError values.
func NewPerUserBulkhead(cfg PerUserConfig) (*PerUserBulkhead, error) {
	c := newChecker("core.PerUserConfig.")
	cfg = cfg.normalize(c)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return newPerUserBulkhead(cfg), nil
}

func newPerUserBulkhead(cfg PerUserConfig) *PerUserBulkhead {
	p := &PerUserBulkhead{
		cfg:      cfg,
		disabled: cfg.Bulkhead.Disabled,
		clock:    cfg.Clock,
		seed:     maphash.MakeSeed(),
		mask:     uint64(cfg.Shards - 1),
		shards:   make([]userShard, cfg.Shards),
		rejected: newBulkRejections(cfg.Bulkhead),
	}
	for i := range p.shards {
		sh := &p.shards[i]
		sh.limit = cfg.MaxUsers / cfg.Shards
		if i < cfg.MaxUsers%cfg.Shards {
			sh.limit++
		}
		sh.users = make(map[string]*userEntry)
		sh.retired.MaxConcurrent = cfg.Bulkhead.MaxConcurrentRequests
		sh.retired.MaxQueue = cfg.Bulkhead.queueLen()
	}
	return p
}

func (p *PerUserBulkhead) shard(user string) *userShard {
	return &p.shards[maphash.String(p.seed, user)&p.mask]
}

// Acquire takes a slot of user's bulkhead, starting to track the user if
// needed. It waits in the user's queue as Bulkhead.Acquire does and fails
// with ErrBulkheadFull, ErrBulkheadTimeout or ctx.Err(), with
// ErrTooManyUsers for a new user when there is no room for one, and with
// ErrInvalidUserID for an empty or oversized user ID.
func (p *PerUserBulkhead) Acquire(ctx context.Context, user string) (Guard, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	return p.acquire(ctx, user, true)
}

// TryAcquire takes a slot of user's bulkhead if one is free now and never
// waits; it fails as Acquire does, with ErrBulkheadFull when it would have
// had to queue.
func (p *PerUserBulkhead) TryAcquire(user string) (Guard, error) {
	return p.acquire(context.Background(), user, false)
}

func (p *PerUserBulkhead) acquire(ctx context.Context, user string, wait bool) (Guard, error) {
	if p.disabled {
		return Guard{}, nil
	}
	if len(user) == 0 || len(user) > maxUserIDLen {
		return Guard{}, ErrInvalidUserID
	}
	sh := p.shard(user)
	sh.mu.RLock()
	e := sh.users[user]
	if e == nil {
		sh.mu.RUnlock()
		return p.acquireNew(ctx, sh, user, wait)
	}
	s, w, err := e.lim.begin(ctx, wait)
	sh.mu.RUnlock()
	if w != nil {
		s, err = e.lim.wait(ctx, w)
	}
	return Guard{s}, err
}

// acquireNew is acquire for a user that was not tracked a moment ago.
func (p *PerUserBulkhead) acquireNew(ctx context.Context, sh *userShard, user string, wait bool) (Guard, error) {
	sh.mu.Lock()
	e := sh.users[user]
	if e == nil {
		if e = p.insert(sh, user); e == nil {
			sh.mu.Unlock()
			p.tooMany.Add(1)
			return Guard{}, ErrTooManyUsers
		}
	}
	s, w, err := e.lim.begin(ctx, wait)
	sh.mu.Unlock()
	if w != nil {
		s, err = e.lim.wait(ctx, w)
	}
	return Guard{s}, err
}

// expireSample is how many entries an insert checks for expiry, so that the
// table sheds idle users under churn without a sweeper.
const expireSample = 2

// evictSample is how many idle entries an insert into a full shard compares
// to find the least recently used one.
const evictSample = 4

// insert tracks user in sh, making room if sh is full. It returns nil when
// every entry of a full shard is busy. Called with sh.mu held for writing.
//
// A new user in a full shard takes over the memory of the user it evicts,
// so that a flood of new users allocates little more than their IDs.
func (p *PerUserBulkhead) insert(sh *userShard, user string) *userEntry {
	now := p.clock.Nanotime()
	var e *userEntry
	if len(sh.users) >= sh.limit {
		if e = p.evictOne(sh, now); e == nil {
			return nil
		}
		e.reuse(strings.Clone(user), now)
	} else {
		p.expire(sh, now, expireSample)
		e = &userEntry{user: strings.Clone(user)}
		e.lim.stripes = e.one[:]
		e.lim.stampIdle = true
		e.lim.init(p.cfg.Bulkhead, 1, p.rejected)
		e.one[0].lastUsed.Store(now)
	}
	sh.users[e.user] = e
	return e
}

// reuse turns an evicted entry, whose counters evict has already moved out
// and zeroed, into user's. The limiter's settings stay as they are, because
// the release that made the entry idle may still be reading them (and its
// atomics) for the previous user; what it does to the new user's entry then
// is harmless: stamp lastUsed, or hand free slots to the queue. Called with
// the shard's write lock held, which every other reader of the entry needs.
func (e *userEntry) reuse(user string, now int64) {
	e.user = user
	e.one[0].lastUsed.Store(now)
}

func (p *PerUserBulkhead) expired(e *userEntry, now int64) bool {
	return now-e.one[0].lastUsed.Load() >= int64(p.cfg.IdleTimeout) && e.lim.idle()
}

// expire evicts the expired entries among up to n entries (all when n < 0),
// visited in the map's random order. Called with sh.mu held for writing.
func (p *PerUserBulkhead) expire(sh *userShard, now int64, n int) int {
	evicted := 0
	for k, e := range sh.users {
		if n == 0 {
			break
		}
		n--
		if p.expired(e, now) {
			sh.evict(k, e)
			evicted++
		}
	}
	return evicted
}

// evictOne makes room in a full shard: it evicts every expired entry among a
// sample of idle ones, or else the least recently used of the sample, and
// returns one evicted entry. It scans past busy entries, so it fails (nil)
// only when every entry is busy. Called with sh.mu held for writing.
func (p *PerUserBulkhead) evictOne(sh *userShard, now int64) *userEntry {
	var (
		lru, freed *userEntry
		lruKey     string
		lruUsed    int64
		seen       int
	)
	for k, e := range sh.users {
		s := &e.one[0]
		if s.held.Load() != 0 {
			continue
		}
		used := s.lastUsed.Load()
		expired := now-used >= int64(p.cfg.IdleTimeout)
		if expired || lru == nil || used < lruUsed {
			// Nothing may wait for a slot either. waiting is on another
			// cache line than held and lastUsed, so it is read only for
			// an entry that would be chosen.
			if e.lim.waiting.Load() != 0 {
				continue
			}
			if expired {
				sh.evict(k, e)
				freed = e
			} else {
				lru, lruKey, lruUsed = e, k, used
			}
		}
		if seen++; seen == evictSample {
			break
		}
	}
	if freed == nil && lru != nil {
		sh.evict(lruKey, lru)
		freed = lru
	}
	return freed
}

// evict forgets an idle entry, keeping its counters in the shard's totals.
// Called with sh.mu held for writing.
func (sh *userShard) evict(k string, e *userEntry) {
	delete(sh.users, k)
	e.lim.drainInto(&sh.retired)
	sh.evicted++
}

// drainInto adds the counters of an idle limiter to st and zeroes them.
func (l *bulkLimiter) drainInto(st *BulkheadStats) {
	l.mu.Lock()
	timedOut := l.timedOut
	st.QueueTime.add(l.hist.Snapshot())
	l.timedOut = 0
	l.hist.reset()
	l.mu.Unlock()
	var admitted uint64
	for i := range l.stripes {
		admitted += l.stripes[i].admitted.Swap(0)
	}
	rejected, cancelled := l.rejected.Swap(0), l.cancelled.Swap(0)
	st.Admitted += admitted
	st.Rejected += rejected
	st.TimedOut += timedOut
	st.Cancelled += cancelled
	st.Total += admitted + rejected + timedOut + cancelled
}

// RemoveUser stops tracking user and reports whether it did. A user that
// holds or waits for a slot is left alone (false): its slots must still be
// released into its own bulkhead; it becomes evictable once idle. The
// removed user's counters stay in Stats.
func (p *PerUserBulkhead) RemoveUser(user string) bool {
	sh := p.shard(user)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.users[user]
	if e == nil || !e.lim.idle() {
		return false
	}
	sh.evict(user, e)
	return true
}

// UserStats returns a snapshot of user's bulkhead, and false when the user is
// not tracked (never seen, removed or evicted).
func (p *PerUserBulkhead) UserStats(user string) (BulkheadStats, bool) {
	sh := p.shard(user)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	e := sh.users[user]
	if e == nil {
		return BulkheadStats{}, false
	}
	return e.lim.stats(), true
}

// PerUserStats is a snapshot of a PerUserBulkhead as a whole.
type PerUserStats struct {
	// Users is how many users are tracked now; MaxUsers bounds it.
	Users    int
	MaxUsers int
	// All sums every user's bulkhead, including users since evicted: Active
	// and Queued over all users now, the counters since the start.
	// MaxConcurrent and MaxQueue are the per-user limits.
	All BulkheadStats
	// TooManyUsers counts ErrTooManyUsers answers.
	TooManyUsers uint64
	// Evicted counts users evicted or removed.
	Evicted uint64
}

// Stats returns the aggregate of all users. It visits every tracked user, so
// it is meant for metrics scrapes and admin views, not the request path.
func (p *PerUserBulkhead) Stats() PerUserStats {
	st := PerUserStats{MaxUsers: p.cfg.MaxUsers, TooManyUsers: p.tooMany.Load()}
	st.All.MaxConcurrent = p.cfg.Bulkhead.MaxConcurrentRequests
	st.All.MaxQueue = p.cfg.Bulkhead.queueLen()
	if p.disabled {
		st.All.MaxConcurrent, st.All.MaxQueue = 0, 0
	}
	for i := range p.shards {
		sh := &p.shards[i]
		sh.mu.RLock()
		st.Users += len(sh.users)
		st.Evicted += sh.evicted
		st.All.add(sh.retired)
		for _, e := range sh.users {
			st.All.add(e.lim.stats())
		}
		sh.mu.RUnlock()
	}
	return st
}

// UserStats is one user's entry in TopUsers.
type UserStats struct {
	User  string
	Stats BulkheadStats
}

// TopUsers returns up to TopN tracked users, busiest first: by slots held
// plus calls queued, then by calls seen. It is meant for admin views; the
// user IDs it returns must not become metric labels.
func (p *PerUserBulkhead) TopUsers() []UserStats {
	h := make(topHeap, 0, p.cfg.TopN)
	for i := range p.shards {
		sh := &p.shards[i]
		sh.mu.RLock()
		for _, e := range sh.users {
			held, waiting := e.lim.active()
			c := topCand{user: e.user, load: held + waiting, seen: e.one[0].admitted.Load() + e.lim.rejected.Load()}
			full := len(h) == p.cfg.TopN
			if full && !h[0].less(c) {
				continue
			}
			// Snapshot now, under the shard lock: once it is released
			// the entry may be evicted and reused for another user.
			c.stats = e.lim.stats()
			if full {
				h[0] = c
				heap.Fix(&h, 0)
			} else {
				heap.Push(&h, c)
			}
		}
		sh.mu.RUnlock()
	}
	out := make([]UserStats, len(h))
	for i := len(h) - 1; i >= 0; i-- {
		c := heap.Pop(&h).(topCand)
		out[i] = UserStats{User: c.user, Stats: c.stats}
	}
	return out
}

type topCand struct {
	user  string
	load  int64
	seen  uint64
	stats BulkheadStats
}

// less orders candidates from least to most busy; ties go by user ID so
// that the result is stable.
func (a topCand) less(b topCand) bool {
	if a.load != b.load {
		return a.load < b.load
	}
	if a.seen != b.seen {
		return a.seen < b.seen
	}
	return a.user > b.user
}

// topHeap is a min-heap of the busiest candidates seen so far.
type topHeap []topCand

func (h topHeap) Len() int           { return len(h) }
func (h topHeap) Less(i, j int) bool { return h[i].less(h[j]) }
func (h topHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *topHeap) Push(x any)        { *h = append(*h, x.(topCand)) }
func (h *topHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}
