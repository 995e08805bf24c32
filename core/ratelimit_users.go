package core

import (
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark/internal/check"
)

// PerUserRateLimitConfig configures a PerUserRateLimiter. The zero value is
// the default; every zero field takes the default written beside it.
type PerUserRateLimitConfig struct {
	// RateLimit is the limit each user gets: by default 100 calls per
	// second with a burst of 100. RateLimit.Disabled turns per-user
	// limiting off: every call is allowed and no user is tracked. Its Name
	// names the refusals; its Clock is ignored. Shared must be false: each
	// user's limit is this instance's.
	RateLimit RateLimitConfig
	// MaxUsers bounds how many users are tracked at once. Default 10,000;
	// 1 to 100,000,000. The bound is kept per shard (each holds
	// MaxUsers/Shards users), so a new user can meet ErrTooManyUsers while
	// other shards still have room.
	MaxUsers int
	// IdleTimeout is how long a user whose bucket is full stays tracked
	// before it may be evicted to keep the table small. Default 5m; 1ms to
	// 24h. When a new user needs room, any user whose bucket is full may
	// be evicted at once, least recently used first: a full bucket is the
	// same as a new one, so eviction never gives anyone back tokens.
	IdleTimeout time.Duration
	// Shards is how many independently locked parts the user table is split
	// into. Default 64; a power of two from 1 to 65,536, and no more than
	// MaxUsers (it is lowered to fit).
	Shards int
	// Clock times the refill. Nil means SystemClock. A Manager sets its
	// own.
	Clock Clock
}

// normalize fills every zero field with its default and reports every
// field out of range into c.
func (cfg PerUserRateLimitConfig) normalize(c *check.Checker) PerUserRateLimitConfig {
	if cfg.Clock == nil {
		cfg.Clock = SystemClock()
	}
	cfg.RateLimit.Clock = cfg.Clock
	cfg.RateLimit = cfg.RateLimit.normalize(c.Sub("RateLimit"))
	if cfg.RateLimit.Shared {
		c.Fail("RateLimit.Shared", true, "must be false: only an endpoint's rate limit is shared across instances, not each user's")
	}
	c.Int("MaxUsers", &cfg.MaxUsers, 10_000, 1, 100_000_000)
	c.Duration("IdleTimeout", &cfg.IdleTimeout, 5*time.Minute, time.Millisecond, 24*time.Hour)
	cfg.Shards = userShards(c, cfg.Shards, cfg.MaxUsers)
	return cfg
}

// PerUserRateLimiter gives every user a rate limit of their own, so that
// one user cannot spend a service's whole rate. It is safe for concurrent
// use.
//
// Users are tracked in a table bounded by MaxUsers and split into shards by
// a hash of the user ID, each with its own lock. A user already tracked
// costs a read lock, a map lookup and a compare-and-swap, and no
// allocation. A user is evicted only once their bucket is full again, so
// no churn of other users resets anyone's limit; when every user of a full
// shard is still refilling, a new user meets ErrTooManyUsers. No goroutine
// is needed.
//
// User IDs are never put in errors and must never become metric labels:
// export Stats, which sums over all users.
type PerUserRateLimiter struct {
	params atomic.Pointer[rlParams] // every user's bucket
	clock  Clock
	base   int64
	rej    *rlRejections
	users  userTable[userBucket, rlCounts, *userBucket]

	mu  sync.Mutex // serialises reconfiguration
	cfg PerUserRateLimitConfig
}

// NewPerUserRateLimiter returns a per-user rate limiter, or every field of
// cfg that is out of range as *ConfigError values.
func NewPerUserRateLimiter(cfg PerUserRateLimitConfig) (*PerUserRateLimiter, error) {
	c := newChecker("core.PerUserRateLimitConfig.")
	cfg = cfg.normalize(c)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return newPerUserRateLimiter(cfg), nil
}

func newPerUserRateLimiter(cfg PerUserRateLimitConfig) *PerUserRateLimiter {
	p := &PerUserRateLimiter{
		clock: cfg.Clock,
		base:  cfg.Clock.Nanotime(),
		rej:   &rlRejections{name: cfg.RateLimit.Name},
		cfg:   cfg,
	}
	p.params.Store(newRLParams(cfg.RateLimit, 1))
	p.users.init(cfg.MaxUsers, cfg.Shards, rlUnits(int64(cfg.IdleTimeout)))
	return p
}

// Allow takes a token from user's bucket, starting to track the user if
// needed. It returns nil, a *RejectedError matching ErrRateLimited as
// RateLimiter.Allow does, ErrTooManyUsers for a new user when there is no
// room for one, or ErrInvalidUserID for an empty or oversized user ID.
func (p *PerUserRateLimiter) Allow(user string) error {
	prm := p.params.Load()
	if prm.disabled {
		return nil
	}
	if len(user) == 0 || len(user) > maxUserIDLen {
		return ErrInvalidUserID
	}
	now := rlUnits(p.clock.Nanotime() - p.base)
	sh := p.users.shard(user)
	sh.mu.RLock()
	e := sh.users[user]
	if e == nil {
		sh.mu.RUnlock()
		sh.mu.Lock()
		if e = p.users.insertLocked(sh, user, now); e == nil {
			sh.mu.Unlock()
			p.users.tooMany.Add(1)
			return ErrTooManyUsers
		}
		// Take the token before unlocking, so that the new entry is not
		// evicted, full, before it is used.
		wait, ok := e.take(prm, now)
		sh.mu.Unlock()
		return p.result(e, wait, ok)
	}
	// Under the read lock: eviction, which needs the write lock, cannot
	// see the bucket full while its token is being taken.
	wait, ok := e.take(prm, now)
	sh.mu.RUnlock()
	return p.result(e, wait, ok)
}

func (p *PerUserRateLimiter) result(e *userBucket, wait time.Duration, ok bool) error {
	if ok {
		return nil
	}
	e.refused.Add(1)
	return p.rej.get(wait)
}

// Stats returns the aggregate of all users: counters since the start,
// users tracked and evicted. Rate and Burst are each user's. It visits
// every tracked user, so it is meant for metrics scrapes and admin views,
// not the request path.
func (p *PerUserRateLimiter) Stats() RateLimitStats {
	prm := p.params.Load()
	st := RateLimitStats{MaxUsers: int(p.users.maxUsers.Load()), TooManyUsers: p.users.tooMany.Load()}
	if !prm.disabled {
		st.Rate, st.Burst, st.Share = prm.rate, prm.burst, prm.share
	}
	var c rlCounts
	st.Users, st.Evicted = p.users.sum(&c, (*rlCounts).add)
	st.Allowed, st.Refused = c.allowed, c.refused
	return st
}

// reconfigure applies a normalized configuration in place: users keep the
// tokens they hold (up to the new Burst) and their counters. MaxUsers and
// IdleTimeout take effect at once (a lower MaxUsers as new users make
// room, and never below one user per shard); Shards keeps its first value.
func (p *PerUserRateLimiter) reconfigure(cfg PerUserRateLimitConfig) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cfg.Clock, cfg.RateLimit.Clock, cfg.RateLimit.Name = p.clock, p.clock, p.cfg.RateLimit.Name
	cfg.Shards = p.cfg.Shards
	p.cfg = cfg
	old := p.params.Load()
	prm := newRLParams(cfg.RateLimit, 1)
	p.params.Store(prm)
	p.users.setBounds(cfg.MaxUsers, rlUnits(int64(cfg.IdleTimeout)))
	if !old.disabled && !prm.disabled {
		now := rlUnits(p.clock.Nanotime() - p.base)
		p.users.each(func(e *userBucket) { e.rescale(old, prm, now) })
	}
}

// userBucket is one user's bucket in a PerUserRateLimiter's table.
type userBucket struct {
	tokenBucket
	refused atomic.Uint64
}

// rlCounts sums the counters of users' buckets.
type rlCounts struct{ allowed, refused uint64 }

func (c *rlCounts) add(o *rlCounts) {
	c.allowed += o.allowed
	c.refused += o.refused
}

func (e *userBucket) reset(now int64) {
	e.tat.Store(now) // full, and idle since now
	e.allowed.Store(0)
	e.refused.Store(0)
}

// idle reports whether the user may be evicted at time now (their bucket
// is full) and since when it has been full.
func (e *userBucket) idle(now int64) (int64, bool) {
	t := e.tat.Load()
	return t, t <= now
}

func (e *userBucket) addTo(s *rlCounts) {
	s.allowed += e.allowed.Load()
	s.refused += e.refused.Load()
}

// tableEntry is what a userTable needs of its entries, *E being the type
// stored. S is the type their counters sum into.
type tableEntry[E, S any] interface {
	*E
	// reset makes the entry a new user's, at time now: on a new entry,
	// or on one just evicted whose memory is reused.
	reset(now int64)
	// idle reports whether the entry may be evicted at time now and since
	// when it has been idle (the longer, the sooner it goes). It is called
	// with the shard's write lock held; whatever makes an entry busy must
	// happen under the shard's read lock.
	idle(now int64) (since int64, ok bool)
	// addTo adds the entry's counters to s.
	addTo(s *S)
}

// userTable is a table of per-user entries bounded by maxUsers, split into
// shards by a hash of the user ID, each with its own lock. Entries are
// looked up under a shard's read lock; inserting takes its write lock and
// makes room by evicting idle entries: expired ones (idle for idleTimeout)
// first, else the least recently used of a sample. Evicted entries' memory
// is reused for new users and their counters kept in the shard's totals.
// No goroutine is needed.
//
// It knows nothing of what its entries are: PerUserRateLimiter keeps
// buckets in it, and the per-user bulkhead's table has the same shape.
type userTable[E, S any, P tableEntry[E, S]] struct {
	seed     maphash.Seed
	mask     uint64
	shards   []tableShard[P, S]
	maxUsers atomic.Int64
	// idleTimeout is in the entries' own time unit, as their idle reports.
	idleTimeout atomic.Int64
	tooMany     atomic.Uint64
}

// tableShard is one lock's worth of a userTable.
type tableShard[P, S any] struct {
	mu      sync.RWMutex
	users   map[string]P
	limit   int
	retired S      // counters of evicted entries, so that sums stay monotonic
	evicted uint64 // under mu
	_       [64]byte
}

func (t *userTable[E, S, P]) init(maxUsers, shards int, idleTimeout int64) {
	t.seed = maphash.MakeSeed()
	t.mask = uint64(shards - 1)
	t.shards = make([]tableShard[P, S], shards)
	for i := range t.shards {
		t.shards[i].users = make(map[string]P)
	}
	t.setBounds(maxUsers, idleTimeout)
}

// setBounds shares maxUsers out among the shards. Each shard's limit is
// written under its lock.
func (t *userTable[E, S, P]) setBounds(maxUsers int, idleTimeout int64) {
	t.idleTimeout.Store(idleTimeout)
	n := len(t.shards)
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		sh.limit = maxUsers / n
		if i < maxUsers%n {
			sh.limit++
		}
		sh.limit = max(sh.limit, 1)
		sh.mu.Unlock()
	}
	t.maxUsers.Store(int64(maxUsers))
}

func (t *userTable[E, S, P]) shard(user string) *tableShard[P, S] {
	return &t.shards[maphash.String(t.seed, user)&t.mask]
}

// tableExpireSample is how many entries an insert checks for expiry, so
// that the table sheds idle users under churn without a sweeper.
const tableExpireSample = 2

// tableEvictSample is how many idle entries an insert into a full shard
// compares to find the least recently used one.
const tableEvictSample = 4

// insertLocked returns user's entry in sh, making it (and room for it) if
// needed, or nil when sh is full of busy entries. Called with sh.mu held
// for writing.
func (t *userTable[E, S, P]) insertLocked(sh *tableShard[P, S], user string, now int64) P {
	if e := sh.users[user]; e != nil {
		return e
	}
	var e P
	if len(sh.users) >= sh.limit {
		if e = t.evictOne(sh, now); e == nil {
			return nil
		}
		if len(sh.users) >= sh.limit {
			t.evictOne(sh, now) // shrink toward a lowered bound
		}
	} else {
		t.expire(sh, now, tableExpireSample)
		e = P(new(E))
	}
	e.reset(now)
	sh.users[strings.Clone(user)] = e
	return e
}

// expire evicts the expired entries among up to n entries (all when n <
// 0), visited in the map's random order. Called with sh.mu held for
// writing.
func (t *userTable[E, S, P]) expire(sh *tableShard[P, S], now int64, n int) int {
	timeout := t.idleTimeout.Load()
	evicted := 0
	for k, e := range sh.users {
		if n == 0 {
			break
		}
		n--
		if since, ok := e.idle(now); ok && now-since >= timeout {
			t.evict(sh, k, e)
			evicted++
		}
	}
	return evicted
}

// evictOne makes room in a full shard: it evicts every expired entry
// among a sample of idle ones, or else the least recently used of the
// sample, and returns one evicted entry for reuse. It scans past busy
// entries, so it fails (nil) only when every entry is busy. Called with
// sh.mu held for writing.
func (t *userTable[E, S, P]) evictOne(sh *tableShard[P, S], now int64) P {
	timeout := t.idleTimeout.Load()
	var (
		lru, freed P
		lruKey     string
		lruSince   int64
		seen       int
	)
	for k, e := range sh.users {
		since, ok := e.idle(now)
		if !ok {
			continue
		}
		switch {
		case now-since >= timeout:
			t.evict(sh, k, e)
			freed = e
		case lru == nil || since < lruSince:
			lru, lruKey, lruSince = e, k, since
		}
		if seen++; seen == tableEvictSample {
			break
		}
	}
	if freed == nil && lru != nil {
		t.evict(sh, lruKey, lru)
		freed = lru
	}
	return freed
}

// evict forgets an idle entry, keeping its counters in the shard's totals.
// Called with sh.mu held for writing.
func (t *userTable[E, S, P]) evict(sh *tableShard[P, S], k string, e P) {
	delete(sh.users, k)
	e.addTo(&sh.retired)
	sh.evicted++
}

// sum adds every entry's counters to s, and the shards' totals of evicted
// entries with merge; it returns how many users are tracked and how many
// were evicted.
func (t *userTable[E, S, P]) sum(s *S, merge func(dst, src *S)) (users int, evicted uint64) {
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.RLock()
		users += len(sh.users)
		evicted += sh.evicted
		merge(s, &sh.retired)
		for _, e := range sh.users {
			e.addTo(s)
		}
		sh.mu.RUnlock()
	}
	return users, evicted
}

// each calls fn for every entry, under its shard's write lock.
func (t *userTable[E, S, P]) each(fn func(P)) {
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		for _, e := range sh.users {
			fn(e)
		}
		sh.mu.Unlock()
	}
}
