package store

import (
	"context"
	"crypto/rand"
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
)

// Defaults of RedisConfig.
const (
	DefaultRedisKeyPrefix           = "bulwark"
	DefaultRedisSyncInterval        = time.Second
	DefaultRedisTTL                 = time.Hour
	DefaultRedisOpTimeout           = 500 * time.Millisecond
	DefaultRedisMaxReconnectBackoff = 30 * time.Second
	DefaultRedisMaxEndpoints        = 10_000
)

// ErrRedisUnavailable is matched by the error of a cluster-wide control
// (ForceOpen, Reset, Disable) that could not reach Redis; the change was
// then made on this instance only.
var ErrRedisUnavailable = errors.New("redis unavailable")

// ErrRedisStoreClosed is returned by a RedisStore's methods after Close.
var ErrRedisStoreClosed = errors.New("redis store is closed")

// RedisConfig configures a RedisStore. The zero value is valid.
type RedisConfig struct {
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
	// that uses it; it is refreshed on every write and sync. Default 1h
	// (the seed's); 1s to 720h.
	TTL time.Duration
	// OpTimeout bounds every Redis call the store makes. Default 500ms;
	// 1ms to 1m. Give the client ContextTimeoutEnabled so that it applies
	// to socket reads as well.
	OpTimeout time.Duration
	// MaxReconnectBackoff caps the wait between reconnection attempts
	// while Redis is unreachable. Default 30s; SyncInterval to 10m.
	MaxReconnectBackoff time.Duration
	// MaxEndpoints bounds the breakers one store follows. Default 10,000;
	// 1 to 1,000,000.
	MaxEndpoints int
}

// Validate reports every field that is out of range, each as a
// *core.ConfigError.
func (c RedisConfig) Validate() error {
	var errs []error
	fail := func(field string, v any, rule string) {
		errs = append(errs, &core.ConfigError{Field: "RedisConfig." + field, Value: v, Rule: rule})
	}
	if c.KeyPrefix != "" && !validID(c.KeyPrefix) {
		fail("KeyPrefix", c.KeyPrefix, "must be 1 to 128 of A-Z a-z 0-9 . _ : - (empty means the default, bulwark)")
	}
	if c.InstanceID != "" && !validID(c.InstanceID) {
		fail("InstanceID", c.InstanceID, "must be 1 to 128 of A-Z a-z 0-9 . _ : - (empty means random)")
	}
	dur := func(field string, v, lo, hi time.Duration, def string) {
		if v != 0 && (v < lo || v > hi) {
			fail(field, v, fmt.Sprintf("must be between %v and %v (0 means the default, %s)", lo, hi, def))
		}
	}
	dur("SyncInterval", c.SyncInterval, 10*time.Millisecond, time.Minute, "1s")
	dur("TTL", c.TTL, time.Second, 720*time.Hour, "1h")
	dur("OpTimeout", c.OpTimeout, time.Millisecond, time.Minute, "500ms")
	d := c.withDefaults()
	dur("MaxReconnectBackoff", c.MaxReconnectBackoff, d.SyncInterval, 10*time.Minute, "30s")
	if c.MaxEndpoints != 0 && (c.MaxEndpoints < 1 || c.MaxEndpoints > 1_000_000) {
		fail("MaxEndpoints", c.MaxEndpoints, "must be between 1 and 1000000 (0 means the default, 10000)")
	}
	return errors.Join(errs...)
}

func (c RedisConfig) withDefaults() RedisConfig {
	if c.KeyPrefix == "" {
		c.KeyPrefix = DefaultRedisKeyPrefix
	}
	if c.SyncInterval == 0 {
		c.SyncInterval = DefaultRedisSyncInterval
	}
	if c.TTL == 0 {
		c.TTL = DefaultRedisTTL
	}
	if c.OpTimeout == 0 {
		c.OpTimeout = DefaultRedisOpTimeout
	}
	if c.MaxReconnectBackoff == 0 {
		c.MaxReconnectBackoff = max(DefaultRedisMaxReconnectBackoff, c.SyncInterval)
	}
	if c.MaxEndpoints == 0 {
		c.MaxEndpoints = DefaultRedisMaxEndpoints
	}
	return c
}

// RedisOption supplies an optional dependency to NewRedisStore.
type RedisOption func(*redisOptions)

type redisOptions struct {
	bus *events.Bus
	log *slog.Logger
}

// WithRedisBus makes the store publish its events (ClusterStateChange,
// StoreStatus) on b. Without it the store uses the bus of the first Manager
// attached with AttachManager.
func WithRedisBus(b *events.Bus) RedisOption { return func(o *redisOptions) { o.bus = b } }

// WithRedisLogger makes the store log warnings to l instead of
// slog.Default().
func WithRedisLogger(l *slog.Logger) RedisOption { return func(o *redisOptions) { o.log = l } }

// RedisStore shares circuit-breaker state across instances through Redis
// (the seed's with_distributed_state). Attach the breakers of every
// instance to a RedisStore on the same Redis and key prefix:
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
//     with slots claimed from Redis.
//
// The request path never waits for Redis: breakers are only observed and
// updated from the store's own goroutines. When Redis is unreachable the
// breakers run on local state, a StoreStatus "degraded" event is published
// and the store reconnects with backoff, then reconciles by version.
//
// The store works with a single node, Sentinel or Cluster client. It does
// not close the client.
//
// # Keys and channel
//
// Each endpoint has three keys sharing the hash tag {prefix:endpoint}, so
// that in Redis Cluster they sit in one slot; the endpoint is
// percent-encoded outside [A-Za-z0-9._~/-], so no name can break the tag:
//
//	{bulwark:api}:state   hash: version, state, old_state, open_until (Unix ms),
//	                      reason, origin (instance ID), updated (Unix ms),
//	                      window_epoch; TTL refreshed on every write and sync
//	{bulwark:api}:window  hash: instance ID -> "total failed slow pushed_ms version"
//	{bulwark:api}:probes  hash: version, claimed (the half-open probe budget)
//
// Winning transitions are published as JSON on the channel
// "bulwark:transitions":
//
//	{"endpoint":"api","version":8,"state":"Open","old_state":"Closed",
//	 "open_until":1760000060000,"reason":"...","origin":"web-1","updated":1760000000000}
//
// Everything read back, messages included, is validated; a malformed value
// is reported (a StoreStatus error event and a warning) and ignored, and
// the next transition of that endpoint replaces it.
type RedisStore struct {
	client  redis.UniversalClient
	cfg     RedisConfig
	log     *slog.Logger
	bus     atomic.Pointer[events.Bus]
	busSet  atomic.Bool // the bus came from WithRedisBus or a Manager
	channel string

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	healthy atomic.Bool   // Redis answered the last call
	rounds  atomic.Uint64 // completed sync rounds
	ticks   atomic.Uint64 // sync intervals handled, with Redis or without

	wake   chan struct{}      // local changes or new endpoints are queued
	remote chan []byte        // transition messages from the subscriber
	resync chan struct{}      // the subscription had a gap
	admin  chan *adminRequest // cluster-wide controls

	mu     sync.Mutex
	closed bool
	eps    map[string]*redisEndpoint
	ready  []*redisEndpoint // endpoints with queued work, each once
	pubsub *redis.PubSub    // the live subscription, for Close

	// Touched by the worker goroutine only.
	announcedDown bool          // a degraded event was published
	retryAt       time.Time     // next reconnection attempt
	backoff       time.Duration // current reconnection backoff
	reportedAt    time.Time     // last report of an error with no endpoint
}

// redisEndpoint is one attached breaker and what the store knows of its
// shared state.
type redisEndpoint struct {
	name   string
	b      *core.Breaker
	keys   redisKeys
	cancel func() // removes the listener

	// Under RedisStore.mu.
	pending []localChange // local transitions not yet proposed
	queued  bool          // on RedisStore.ready
	fresh   bool          // attached, shared state not loaded yet

	// Touched by the worker goroutine only.
	version    uint64    // highest shared version seen or written
	dirty      bool      // changed locally while Redis could not decide
	dirtyAt    time.Time // when the last such change happened
	claimVer   uint64    // half-open version the probe claims are for
	claimed    int       // probe slots claimed for claimVer
	rejected   int64     // rejected calls at the last sync (probe demand)
	wantClaim  bool      // probe slots are wanted without a rejection seen
	reportedAt time.Time // last error report for this endpoint
}

// NewRedisStore returns a store sharing state through client, or the
// configuration's validation error. It starts two goroutines, which Close
// ends.
//
// Give the client ContextTimeoutEnabled and short dial, read and write
// timeouts, so that the store's OpTimeout bounds every call.
func NewRedisStore(client redis.UniversalClient, cfg RedisConfig, opts ...RedisOption) (*RedisStore, error) {
	if client == nil {
		return nil, &core.ConfigError{Field: "client", Value: nil, Rule: "must be a Redis client"}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if cfg.InstanceID == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		cfg.InstanceID = hex.EncodeToString(b[:])
	}
	var o redisOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.Default()
	}
	s := &RedisStore{
		client:  client,
		cfg:     cfg,
		log:     o.log.With("component", "bulwark/store.redis", "instance", cfg.InstanceID),
		channel: cfg.KeyPrefix + ":transitions",
		wake:    make(chan struct{}, 1),
		remote:  make(chan []byte, 256),
		resync:  make(chan struct{}, 1),
		admin:   make(chan *adminRequest),
		eps:     make(map[string]*redisEndpoint),
	}
	if o.bus == nil {
		o.bus = events.NewBus() // until a Manager brings its own
	} else {
		s.busSet.Store(true)
	}
	s.bus.Store(o.bus)
	s.healthy.Store(true) // until a call fails
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(2)
	go s.run()
	go s.subscribe()
	return s, nil
}

// InstanceID returns the ID this instance has in the shared state.
func (s *RedisStore) InstanceID() string { return s.cfg.InstanceID }

// Healthy reports whether the last call to Redis succeeded.
func (s *RedisStore) Healthy() bool { return s.healthy.Load() }

// AttachManager shares the state of every breaker m has and will have.
// Unless WithRedisBus was given, the store publishes its events on m's bus.
func (s *RedisStore) AttachManager(m *core.Manager) {
	if s.busSet.CompareAndSwap(false, true) {
		s.bus.Store(m.Bus())
	}
	m.OnBreaker(func(b *core.Breaker) {
		if err := s.Attach(b); err != nil && !errors.Is(err, ErrRedisStoreClosed) {
			s.warn(b.Name(), "cannot share breaker state", err)
		}
	})
}

// Attach shares b's state. Breakers are told apart by name: attaching a
// second breaker with the same name is an error, attaching the same one
// again does nothing. Past MaxEndpoints it fails.
func (s *RedisStore) Attach(b *core.Breaker) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrRedisStoreClosed
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
	ep := &redisEndpoint{name: b.Name(), b: b, keys: newRedisKeys(s.cfg.KeyPrefix, b.Name()), fresh: true}
	s.eps[ep.name] = ep
	if s.healthy.Load() {
		// Probes need slots claimed from Redis; none are claimed yet.
		b.SetProbeLimit(0)
	}
	ep.cancel = b.OnStateChange(func(e events.StateChange) { s.onChange(ep, e) })
	s.queueLocked(ep)
	return nil
}

// Close stops the store's goroutines, detaches its breakers (they go on
// with local state and their configured probe limit) and removes this
// instance's window counts from Redis if it can within ctx. It does not
// close the client. Calling Close again does nothing.
func (s *RedisStore) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	ps := s.pubsub
	eps := make([]*redisEndpoint, 0, len(s.eps))
	for _, ep := range s.eps {
		eps = append(eps, ep)
	}
	s.mu.Unlock()
	s.cancel()
	if ps != nil {
		_ = ps.Close() // unblocks the subscriber's read
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("bulwark: redis store: close: %w", ctx.Err())
	}
	for _, ep := range eps {
		ep.cancel()
		ep.b.SetProbeLimit(-1)
		ep.b.SetRemoteWindow(0, 0, 0)
	}
	if err == nil && len(eps) > 0 && s.healthy.Load() {
		// Leave the cluster's windows at once rather than after a window.
		cctx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
		pipe := s.client.Pipeline()
		for _, ep := range eps {
			pipe.HDel(cctx, ep.keys.window, s.cfg.InstanceID)
		}
		_, _ = pipe.Exec(cctx)
		cancel()
	}
	return err
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
		Endpoint: endpoint, Error: msg + ": " + err.Error(), Timestamp: time.Now().UTC(),
	})
}
