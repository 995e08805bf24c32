package store

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
	"github.com/bulwark-go/bulwark/internal/check"
)

// Defaults of RedisConfig, documented on its fields.
const (
	defaultKeyPrefix           = "bulwark"
	defaultSyncInterval        = time.Second
	defaultTTL                 = time.Hour
	defaultOpTimeout           = 500 * time.Millisecond
	defaultMaxReconnectBackoff = 30 * time.Second
	defaultMaxEndpoints        = 10_000
)

// ErrRedisUnavailable is matched by the error of a cluster-wide control
// (ForceOpen, Reset, Disable) that could not reach Redis; the change was
// then made on this instance only.
var ErrRedisUnavailable = errors.New("redis unavailable")

// RedisConfig configures a RedisStore. Client is required; the zero value
// of every other field is its default.
type RedisConfig struct {
	// Client reaches Redis: a single node, Sentinel or Cluster client
	// (redis.NewClient, NewFailoverClient, NewClusterClient or
	// NewUniversalClient). Required. The store never closes it. Give it
	// ContextTimeoutEnabled and short dial, read and write timeouts, so
	// that OpTimeout bounds every call.
	Client redis.UniversalClient
	// KeyPrefix starts every key and the channel name, so that several
	// deployments can share one Redis. Default "bulwark"; 1 to 128 of
	// [A-Za-z0-9._:-].
	KeyPrefix string
	// InstanceID names this instance in the shared state. Default: random.
	// 1 to 128 of [A-Za-z0-9._:-]; give each instance its own.
	InstanceID string
	// SyncInterval is how often window counts are exchanged and state
	// versions checked: the bound on how stale an instance's view of the
	// cluster can be when a pub/sub message is lost. Default 1s; 10ms to 1m.
	SyncInterval time.Duration
	// TTL is how long an endpoint's shared state outlives the last instance
	// that uses it; it is refreshed on every write and sync. Default 1h;
	// 1s to 720h.
	TTL time.Duration
	// OpTimeout bounds every Redis call the store makes. Default 500ms;
	// 1ms to 1m.
	OpTimeout time.Duration
	// MaxReconnectBackoff caps the wait between reconnection attempts
	// while Redis is unreachable. Default 30s, or SyncInterval if that is
	// longer; SyncInterval to 10m.
	MaxReconnectBackoff time.Duration
	// MaxEndpoints bounds the breakers one store follows. Default 10,000;
	// 1 to 1,000,000.
	MaxEndpoints int
	// Bus receives the store's events (ClusterStateChange, StoreStatus).
	// Default: the bus of the first Manager given to AttachManager.
	Bus *events.Bus
	// Logger receives the store's warnings: Redis unreachable and back,
	// malformed shared state. Default slog.Default().
	Logger *slog.Logger
	// Clock times the sync interval, the reconnection backoff and the
	// pauses between repeated reports, and is compared with Redis's TIME
	// so that the breakers' times (when an open time or a hold ends) are
	// shared on Redis's clock, and instances whose clocks differ agree on
	// them: give it the breakers' clock (the Manager's, as the kit does).
	// Default core.SystemClock().
	Clock core.Clock
	// OnOverride is called, from the store's goroutine, for every settings
	// override another instance made (PutOverride there), Settings nil for
	// a removal: within milliseconds by pub/sub, and within one
	// SyncInterval for the endpoints this store follows if the message is
	// lost or the store was away. Changes of one endpoint come in version
	// order, and never one older than a change seen before (by
	// PutOverride or Overrides too); this instance's own PutOverride does
	// not come back. It must return quickly and must not call the store's
	// methods that wait for its goroutine (PutOverride, ForceOpen, Reset,
	// Disable, Close). Default nil: changes are not delivered.
	OnOverride func(Override)

	// membersEvery, when set, is how often the list of instances is read
	// and published, in place of the default (see membersPeriod): tests
	// shorten it.
	membersEvery time.Duration
}

// check fills in the defaults and reports every bad field.
func (c *RedisConfig) check() error {
	ck := check.New("store.RedisConfig.", configError)
	checkDependency(ck, "Client", c.Client, true, "a redis.UniversalClient such as redis.NewClient's")
	if c.KeyPrefix == "" {
		c.KeyPrefix = defaultKeyPrefix
	} else if !validID(c.KeyPrefix) {
		ck.Fail("KeyPrefix", c.KeyPrefix, "must be 1 to 128 of A-Z a-z 0-9 . _ : - (empty means the default, bulwark)")
	}
	if c.InstanceID != "" && !validID(c.InstanceID) {
		ck.Fail("InstanceID", c.InstanceID, "must be 1 to 128 of A-Z a-z 0-9 . _ : - (empty means random)")
	}
	ck.Duration("SyncInterval", &c.SyncInterval, defaultSyncInterval, 10*time.Millisecond, time.Minute)
	ck.Duration("TTL", &c.TTL, defaultTTL, time.Second, 720*time.Hour)
	ck.Duration("OpTimeout", &c.OpTimeout, defaultOpTimeout, time.Millisecond, time.Minute)
	sync := c.SyncInterval
	if sync < 10*time.Millisecond || sync > time.Minute {
		sync = defaultSyncInterval // reported above
	}
	if c.MaxReconnectBackoff == 0 {
		c.MaxReconnectBackoff = max(defaultMaxReconnectBackoff, sync)
	} else if c.MaxReconnectBackoff < sync || c.MaxReconnectBackoff > 10*time.Minute {
		ck.Fail("MaxReconnectBackoff", c.MaxReconnectBackoff, fmt.Sprintf(
			"must be between SyncInterval (%v) and 10m0s (0 means the default, 30s or SyncInterval if longer)", sync))
	}
	ck.Int("MaxEndpoints", &c.MaxEndpoints, defaultMaxEndpoints, 1, 1_000_000)
	checkDependency(ck, "Clock", c.Clock, false, "a core.Clock, or nil for core.SystemClock()")
	if c.Clock == nil {
		c.Clock = core.SystemClock()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return ck.Err()
}

// RedisStore shares circuit-breaker state across instances through Redis.
// Attach the breakers of every instance to a RedisStore on the same Redis
// and key prefix:
//
//   - A transition on one instance is proposed by a versioned
//     compare-and-set; the winner publishes it and every instance applies
//     it within milliseconds. A loser adopts the winner's state. Only the
//     winner publishes an events.ClusterStateChange, so one cluster
//     transition raises one alert.
//   - Every SyncInterval, one pipelined round trip stores each breaker's
//     window counts and reads the other instances' back, so a failure rate
//     crossed by the cluster as a whole opens every instance's breaker. The
//     same round trip compares state versions, so an instance that missed a
//     message catches up within one SyncInterval.
//   - Half-open probes are counted cluster-wide: an instance probes only
//     with slots claimed from Redis. A claim is a lease, renewed every
//     SyncInterval while the instance holds slots; the slots of an
//     instance silent for the endpoint's ProbeTimeout (at least two sync
//     intervals) go back to the budget, so an instance that died never
//     keeps the others from probing.
//   - A component's hold (core.Breaker.Hold, as a health monitor takes it)
//     is shared with its owner and lease, and lapses on every instance if
//     its owner stops renewing it: the owner's renewals are pushed to the
//     cluster at the next sync round (the shared lease has one
//     SyncInterval of grace for that), and an instance whose copy runs
//     out proposes ForcedOpen to HalfOpen, which one instance wins: within
//     the lease and one SyncInterval of the owner's last renewal. An
//     operator's hold (ForceOpen) never lapses.
//   - A rate limit marked core.RateLimitConfig.Shared, on an endpoint
//     attached through AttachManager, is split among the instances by
//     their demand: in the same round trip every SyncInterval, each
//     instance adds the calls its limiter allowed and refused to the
//     cluster's demand, and its share of the limit becomes its part of
//     the cluster's demand over the last complete interval (the policy
//     core.Quota describes). While Redis is unreachable the shares move
//     toward an even split; Close gives the limiter its whole limit back.
//   - Settings changed at runtime (PutOverride) are kept in Redis without
//     a TTL, under a version per endpoint, and reach every other
//     instance's RedisConfig.OnOverride within milliseconds, or within
//     one SyncInterval when a message is lost; Overrides lists them.
//   - Fault experiments that the first Manager attached with fault
//     injection on starts after AttachManager (core.Manager.StartFault)
//     run on every instance, with the starter's InstanceID as their
//     Origin, within milliseconds by pub/sub, and within one SyncInterval
//     for an instance that missed the message or starts later. Stopped on
//     any instance (StopFault), one ends on all of them. Each instance ends
//     its copy at the experiment's end by itself, as the experiment's key
//     in Redis expires: no instance needs to live for it to end. After
//     Close nothing more is shared, so an instance that ends its
//     experiments as it shuts down (as the kit does) ends only its own
//     copies. While Redis is unreachable each instance keeps what it runs;
//     on reconnection a stop made meanwhile on either side ends the
//     experiment, and one started meanwhile is shared.
//   - Every SyncInterval a second round trip refreshes this instance's
//     heartbeat (and reads the experiments when they changed), and about
//     every 5s (the multiple of SyncInterval from 5s up) it also lists the
//     instances, published as an events.StoreStatus with Status "members"
//     (Healthy: seen within three sync intervals, by Redis's clock), which
//     the admin handler's cluster view shows. An instance silent for twice
//     that period and three sync intervals more leaves the list; Close
//     takes this one out at once.
//
// The request path never waits for Redis: breakers are only observed and
// updated from the store's own goroutines. When Redis is unreachable the
// breakers run on local state, one warning and one StoreStatus "degraded"
// event say why, and the store reconnects with backoff, then reconciles by
// version. go-redis logs failed dials by itself, through its process-wide
// logger, which the store leaves alone (see the package documentation).
//
// The store works with a single node, Sentinel or Cluster client. It does
// not close the client.
//
// # Keys and channel
//
// Each endpoint has four keys, and a few more for a shared rate limit,
// sharing the hash tag {prefix:endpoint}, so that in Redis Cluster they
// sit in one slot; the endpoint is percent-encoded outside
// [A-Za-z0-9._~/-], so no name can break the tag:
//
//	{bulwark:api}:state   hash: version, state, old_state, open_until (Unix ms),
//	                      held_by (a component hold's owner), hold_until (Unix ms:
//	                      the owner's end of the lease plus one SyncInterval),
//	                      reason, origin (instance ID), updated (Unix ms),
//	                      window_epoch; TTL refreshed on every write and sync
//	{bulwark:api}:window  hash: instance ID -> "total failed slow pushed_ms version"
//	{bulwark:api}:probes  hash: version (the half-open round),
//	                      "i:" instance ID -> "slots active_ms lease_ms"
//	{bulwark:api}:settings hash: version, settings (an override's document;
//	                      "" once undone), instance, at (Unix ms); no TTL
//	{bulwark:api}:q:<width>:<bucket>  hash: d (the demand on a shared rate
//	                      limit, summed over the instances, in that bucket of
//	                      SyncInterval = width ms of Redis time), n (the
//	                      instances that added to it); TTL four buckets
//
// and the set "bulwark:settings", in a slot of its own, names the endpoints
// that have a settings hash, for RedisStore.Overrides to list. The keys
// shared by every endpoint share the hash tag {prefix:cluster}:
//
//	{bulwark:cluster}:faults          sorted set: experiment ID, scored by its
//	                                  end (Unix ms); at most MaxFaults of the
//	                                  instance that writes
//	{bulwark:cluster}:fault:<id>      string: the experiment as JSON, expiring
//	                                  at its end (filters included)
//	{bulwark:cluster}:faults:version  string: changes with every start and stop
//	{bulwark:cluster}:members         hash: instance ID -> last seen (Unix ms)
//
// An experiment, as its key holds it (durations in nanoseconds):
//
//	{"id":"9f86d081884c7d65","endpoint":"GET /users/{id}","percent":50,
//	 "status":500,"header":"X-Chaos","duration_ns":600000000000,
//	 "ends":1760000600000,"reason":"game day","origin":"web-1"}
//
// Winning transitions, and renewals of a component's hold, are published
// as JSON on the channel "bulwark:transitions" (held_by and hold_until only
// for a component's hold):
//
//	{"endpoint":"api","version":8,"state":"Open","old_state":"Closed",
//	 "open_until":1760000060000,"reason":"...","origin":"web-1","updated":1760000000000}
//	{"endpoint":"db","version":9,"state":"ForcedOpen","old_state":"Closed","open_until":0,
//	 "held_by":"health db-ping","hold_until":1760000095000,"reason":"...","origin":"web-2",
//	 "updated":1760000000000}
//
// Settings overrides are published on the channel "bulwark:settings"
// (settings "" for a removal):
//
//	{"endpoint":"api","version":3,"instance":"web-1","at":1760000000000,
//	 "settings":"{\"breaker\":{\"failure_threshold\":3}}"}
//
// Fault experiments' starts and stops are published on the channel
// "bulwark:faults":
//
//	{"op":"start","instance":"web-1","fault":{"id":"9f86d081884c7d65",...}}
//	{"op":"stop","instance":"web-2","id":"9f86d081884c7d65"}
//
// Everything read back, messages included, is validated; a malformed value
// is reported (a StoreStatus error event and a warning) and ignored, and
// the next transition of that endpoint replaces it.
type RedisStore struct {
	client  redis.UniversalClient
	cfg     RedisConfig
	clock   core.Clock
	log     *slog.Logger
	bus     atomic.Pointer[events.Bus]
	busSet  atomic.Bool // the bus came from RedisConfig.Bus or a Manager
	channel string

	// ctx bounds the worker's calls: it ends when Close gives up waiting
	// or has finished. subCtx ends the subscription as Close starts.
	ctx       context.Context
	cancel    context.CancelFunc
	subCtx    context.Context
	subCancel context.CancelFunc
	closing   chan struct{} // closed by Close: the worker finishes and returns
	wg        sync.WaitGroup

	settingsChannel string // where settings overrides are published
	faultsChannel   string // where fault experiments are published
	ckeys           clusterKeys

	// faults follows the fault experiments of the first Manager attached
	// that runs fault injection (see redis_faults.go); nil until then.
	faults atomic.Pointer[faultShare]

	// offset is what to add to a time of s.clock for Redis's time, in
	// nanoseconds: times compared across instances are Redis's (see
	// redisClock, which only the worker touches).
	offset atomic.Int64
	rclock redisClock
	nonce  int64 // tells this store's entries in the window aggregates from an earlier one's of the same InstanceID

	healthy  atomic.Bool   // Redis answered the last call
	rounds   atomic.Uint64 // completed sync rounds
	epSyncs  atomic.Uint64 // endpoints synced, summed over the rounds
	ticks    atomic.Uint64 // sync intervals handled, with Redis or without
	attempts atomic.Uint64 // reconnection attempts

	wake   chan struct{}      // local changes or new endpoints are queued
	remote chan remoteMessage // messages from the subscriber
	resync chan struct{}      // the subscription had a gap
	admin  chan *adminRequest // cluster-wide controls
	calls  chan *workerCall   // other work for the worker (PutOverride)

	setMu    sync.Mutex
	setKnown map[string]uint64 // highest settings version seen per endpoint

	// Worker only: the change counter when every endpoint last read its
	// versions, whether the next round reads them all anyway, and the
	// rounds over every endpoint so far.
	seen       string
	checkAll   bool
	fullRounds uint64

	mu     sync.Mutex
	closed bool
	eps    map[string]*redisEndpoint
	ready  []*redisEndpoint // endpoints with queued work, each once
	pubsub *redis.PubSub    // the live subscription, for Close

	// Touched by the worker goroutine only.
	announcedDown bool                    // a degraded event was published
	retryAt       time.Time               // next reconnection attempt
	backoff       time.Duration           // current reconnection backoff
	reportedAt    time.Time               // last report of an error with no endpoint
	holds         map[*redisEndpoint]bool // endpoints whose shared state is a component's hold
	members       memberState             // the heartbeat and the list of instances
}

// redisEndpoint is one attached breaker and what the store knows of its
// shared state.
type redisEndpoint struct {
	name   string
	b      *core.Breaker
	rep    replica // b's replication methods
	keys   redisKeys
	slot   int    // the keys' Redis Cluster slot
	cancel func() // removes the listener

	// Under RedisStore.mu.
	pending []localChange // local transitions not yet proposed
	queued  bool          // on RedisStore.ready
	fresh   bool          // attached, shared state not loaded yet

	attachTransitions uint64 // transitions the breaker had made when attached

	// Touched by the worker goroutine only.
	version    uint64       // highest shared version seen or written; 0 again after a restore (markRestored)
	shared     events.State // the shared state at version, as last written or applied
	heldBy     string       // its component hold's owner, if it is one
	holdUntil  time.Time    // and when that hold lapses, as shared
	lapseSeen  time.Time    // the shared hold end a lapse check has looked at
	learnOnly  bool         // the first load only learns the version: local transitions follow it
	dirty      bool         // changed locally while Redis could not decide
	dirtyAt    time.Time    // when the last such change happened
	claimVer   uint64       // half-open version the probe claims are for
	claimed    int          // probe slots claimed for claimVer
	rejected   int64        // rejected calls at the last sync (probe demand)
	wantClaim  bool         // probe slots are wanted without a rejection seen
	openCalls  int64        // calls seen here (reported or refused) as the breaker last opened
	openNoted  bool         // openCalls is of the current open time
	reportedAt time.Time    // last error report for this endpoint
	touchedAt  time.Time    // last refresh of the state's TTL
	checked    bool         // its versions were read since it was attached (or asked to be again)
	agg        aggState     // this instance's share in the window aggregates
	quota      quotaState   // its part in the endpoint's shared rate limit (redis_quota.go)
}

// NewRedisStore returns a store sharing state through cfg.Client, or a
// *core.ConfigError for every bad field of cfg (joined with errors.Join).
// It starts two goroutines, which Close ends.
func NewRedisStore(cfg RedisConfig) (*RedisStore, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.InstanceID == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		cfg.InstanceID = hex.EncodeToString(b[:])
	}
	s := &RedisStore{
		client:  cfg.Client,
		cfg:     cfg,
		clock:   cfg.Clock,
		log:     cfg.Logger.With("component", "bulwark/store.redis", "instance", cfg.InstanceID),
		channel: cfg.KeyPrefix + ":transitions",
		wake:    make(chan struct{}, 1),
		remote:  make(chan remoteMessage, 256),
		resync:  make(chan struct{}, 1),
		admin:   make(chan *adminRequest),
		calls:   make(chan *workerCall),

		settingsChannel: cfg.KeyPrefix + ":settings",
		faultsChannel:   cfg.KeyPrefix + ":faults",
		ckeys:           newClusterKeys(cfg.KeyPrefix),
		setKnown:        make(map[string]uint64),
		rclock:          redisClock{deadBand: min(maxDeadBand, cfg.SyncInterval/2)},
		closing:         make(chan struct{}),
		eps:             make(map[string]*redisEndpoint),
		holds:           make(map[*redisEndpoint]bool),
	}
	bus := cfg.Bus
	if bus == nil {
		bus = events.NewBus() // until a Manager brings its own
	} else {
		s.busSet.Store(true)
	}
	s.bus.Store(bus)
	var nb [8]byte
	_, _ = rand.Read(nb[:])
	s.nonce = int64(binary.LittleEndian.Uint64(nb[:]) >> 12) // below 2^52: exact in Lua
	s.healthy.Store(true)                                    // until a call fails
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.subCtx, s.subCancel = context.WithCancel(context.Background())
	s.wg.Add(2)
	go s.run()
	go s.subscribe()
	return s, nil
}

// maxDeadBand is the largest difference from Redis's clock that the
// store leaves uncorrected (half a SyncInterval if that is less).
const maxDeadBand = 25 * time.Millisecond

// redisNow is the time by Redis's clock, as well as this instance can
// tell.
func (s *RedisStore) redisNow() time.Time { return s.toRedis(s.clock.Now()) }

// toRedis turns a time of this instance's clock into Redis's.
func (s *RedisStore) toRedis(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.Add(time.Duration(s.offset.Load()))
}

// toLocal turns a time of Redis's clock into this instance's.
func (s *RedisStore) toLocal(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.Add(-time.Duration(s.offset.Load()))
}

// localState is cs, read from Redis, with its times on this instance's
// clock.
func (s *RedisStore) localState(cs clusterState) clusterState {
	cs.OpenUntil, cs.HoldUntil, cs.Updated = s.toLocal(cs.OpenUntil), s.toLocal(cs.HoldUntil), s.toLocal(cs.Updated)
	return cs
}

// InstanceID returns the ID this instance has in the shared state.
func (s *RedisStore) InstanceID() string { return s.cfg.InstanceID }

// AttachManager shares the state of every breaker m has and, through
// Manager.OnEndpoint, of every breaker it creates later. Unless
// RedisConfig.Bus is set, the store publishes its events on m's bus. It
// returns the errors of the breakers m already has (past MaxEndpoints,
// say); later ones are logged and published as StoreStatus errors. The
// fault experiments m starts from now on are shared too, if m runs fault
// injection and is the first such Manager attached (see RedisStore);
// those running already stay this instance's.
func (s *RedisStore) AttachManager(m *core.Manager) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if s.busSet.CompareAndSwap(false, true) {
		s.bus.Store(m.Bus())
	}
	s.followFaults(m)
	var (
		mu        sync.Mutex
		errs      []error
		returning = true
	)
	m.OnEndpoint(func(e *core.Endpoint) {
		b := e.Breaker()
		err := s.Attach(b)
		if err == nil {
			s.followQuota(e)
		}
		if err == nil || errors.Is(err, ErrClosed) {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if returning {
			errs = append(errs, err)
			return
		}
		s.warn(b.Name(), "cannot share breaker state", err)
	})
	mu.Lock()
	defer mu.Unlock()
	returning = false
	return errors.Join(errs...)
}

// Attach shares b's state. Breakers are told apart by name: attaching a
// second breaker with the same name is an error, attaching the same one
// again does nothing. Past MaxEndpoints it fails.
func (s *RedisStore) Attach(b *core.Breaker) error {
	if b == nil {
		return errors.New("bulwark: redis store: Attach(nil)")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if ep, ok := s.eps[b.Name()]; ok {
		if ep.b == b {
			return nil
		}
		return fmt.Errorf("bulwark: redis store: another breaker named %q is already attached", b.Name())
	}
	if len(s.eps) >= s.cfg.MaxEndpoints {
		return fmt.Errorf("bulwark: redis store: %w: %d endpoints attached, the maximum; %q refused",
			core.ErrTooManyEndpoints, len(s.eps), b.Name())
	}
	ep := &redisEndpoint{name: b.Name(), b: b, rep: replicaOf(b), keys: newRedisKeys(s.cfg.KeyPrefix, b.Name()), fresh: true}
	ep.slot = keySlot(ep.keys.state)
	s.eps[ep.name] = ep
	if s.healthy.Load() {
		// Probes need slots claimed from Redis; none are claimed yet.
		ep.rep.limitProbes(0)
	}
	ep.cancel = b.OnStateChange(func(e events.StateChange) { s.onChange(ep, e) })
	s.mu.Unlock()
	// Counted after the listener is in place: a transition the count
	// misses reaches the listener.
	n := transitionCount(b)
	s.mu.Lock()
	ep.attachTransitions = n
	if !s.closed {
		s.queueLocked(ep)
	}
	return nil
}

// transitionCount returns how many transitions b has made.
func transitionCount(b *core.Breaker) uint64 {
	var n uint64
	for _, row := range b.Snapshot().Transitions {
		for _, c := range row {
			n += c
		}
	}
	return n
}

// Close finishes what the store owes the cluster and stops its
// goroutines. Every transition made before Close is proposed to Redis
// (one made while Close runs is not); every hold of a component of this
// process (a health monitor's, say) is ended in the cluster, moving the
// breaker to HalfOpen there, since its owner stops with the process; this
// instance's window counts and probe slots are removed from Redis; and the
// breakers are detached: they go on with local state and their configured
// probe limit. Close returns when that is done,
// or, if ctx ends first, an error wrapping ctx.Err() after cancelling the
// calls in flight. When Redis is unreachable the transitions stay local
// decisions, as they would without Close. Close does not close the
// client. Calling it again returns nil at once.
func (s *RedisStore) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	ps := s.pubsub
	s.mu.Unlock()
	s.subCancel()
	if ps != nil {
		_ = ps.Close() // unblocks the subscriber's read
	}
	close(s.closing)
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	defer s.cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("bulwark: redis store: close: %w", ctx.Err())
	}
}

// publish sends e on the store's bus.
func (s *RedisStore) publish(e events.Event) {
	if b := s.bus.Load(); b != nil {
		b.Publish(e)
	}
}

// warn logs a handled problem and publishes it as a StoreStatus error.
func (s *RedisStore) warn(endpoint, msg string, err error) {
	s.log.Warn("bulwark: redis store: "+msg, "endpoint", endpoint, "error", err)
	s.publish(events.StoreStatus{
		Type: events.TypeStoreStatus, Store: "redis", Instance: s.cfg.InstanceID, Status: events.StoreError,
		Endpoint: endpoint, Error: msg + ": " + err.Error(), Timestamp: s.clock.Now().UTC(),
	})
}
