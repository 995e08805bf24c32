package store

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwark-go/bulwark/alert"
	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
	"github.com/bulwark-go/bulwark/internal/redistest"
	"github.com/bulwark-go/bulwark/internal/wait"
)

// testWait bounds every wait for another goroutine or process (a sync
// round, a message, a write): far longer than any of them takes, so that
// only a broken store reaches it.
const testWait = 10 * time.Second

// testSync is the sync interval of the Redis tests: short, so that tests
// run fast, and long enough for a loaded 2-core machine.
const testSync = 40 * time.Millisecond

// newTestClient returns a client of srv whose timeouts are short, as the
// store's documentation advises.
func newTestClient(t testing.TB, srv *redistest.Server) *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr:                  srv.Addr(),
		ContextTimeoutEnabled: true,
		DialTimeout:           250 * time.Millisecond,
		ReadTimeout:           500 * time.Millisecond,
		WriteTimeout:          500 * time.Millisecond,
		MaxRetries:            -1,
		DialerRetries:         1,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// logRecorder is a slog.Handler that keeps every record.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }

func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r.Clone())
	return nil
}

func (l *logRecorder) all() []slog.Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.recs)
}

// count returns how many records at level have a message containing s.
func (l *logRecorder) count(level slog.Level, s string) int {
	n := 0
	for _, r := range l.all() {
		if r.Level == level && strings.Contains(r.Message, s) {
			n++
		}
	}
	return n
}

func (l *logRecorder) dump() string {
	var b strings.Builder
	for _, r := range l.all() {
		fmt.Fprintf(&b, "  %s %s", r.Level, r.Message)
		r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s", a); return true })
		b.WriteByte('\n')
	}
	return b.String()
}

// recorder keeps every event published on a bus.
type recorder struct {
	sub  *events.Subscription
	done chan struct{}
	mu   sync.Mutex
	evs  []events.Event
}

func record(bus *events.Bus) *recorder {
	r := &recorder{sub: bus.Subscribe(1 << 16), done: make(chan struct{})} // the largest buffer a Bus gives
	go func() {
		defer close(r.done)
		for e := range r.sub.C() {
			r.mu.Lock()
			r.evs = append(r.evs, e)
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *recorder) stop() {
	r.sub.Close()
	<-r.done
}

func (r *recorder) count(match func(events.Event) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.evs {
		if match(e) {
			n++
		}
	}
	return n
}

func (r *recorder) dump() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := ""
	for _, e := range r.evs {
		s += fmt.Sprintf("  %T %+v\n", e, e)
	}
	return s
}

func isWin(endpoint string, to events.State) func(events.Event) bool {
	return func(e events.Event) bool {
		c, ok := e.(events.ClusterStateChange)
		return ok && c.Endpoint == endpoint && c.NewState == to && !c.Local
	}
}

func isStatus(status string) func(events.Event) bool {
	return func(e events.Event) bool {
		s, ok := e.(events.StoreStatus)
		return ok && s.Status == status
	}
}

// instance is one service instance: a Manager whose breakers share state
// through its own client and store.
type instance struct {
	m     *core.Manager
	s     *RedisStore
	c     redis.UniversalClient
	rec   *recorder
	close func()
}

func newInstance(t testing.TB, srv *redistest.Server, name string, bc core.BreakerConfig, rc RedisConfig) *instance {
	t.Helper()
	return newInstanceWith(t, srv, name, bc, rc, nil)
}

// newInstanceWith is newInstance with first called on the Manager before
// the Redis store is attached (to attach a file store first, say).
func newInstanceWith(t testing.TB, srv *redistest.Server, name string, bc core.BreakerConfig, rc RedisConfig, first func(*core.Manager)) *instance {
	t.Helper()
	return newInstanceOn(t, newTestClient(t, srv), name, bc, rc, first)
}

// newInstanceOn is newInstanceWith on any client (a cluster's, say).
func newInstanceOn(t testing.TB, c redis.UniversalClient, name string, bc core.BreakerConfig, rc RedisConfig, first func(*core.Manager)) *instance {
	t.Helper()
	return newInstanceOf(t, c, name, core.ManagerConfig{Defaults: core.EndpointConfig{Breaker: &bc}}, rc, first)
}

// newInstanceOf is newInstanceOn with the Manager made from mc.
func newInstanceOf(t testing.TB, c redis.UniversalClient, name string, mc core.ManagerConfig, rc RedisConfig, first func(*core.Manager)) *instance {
	t.Helper()
	// The breakers run on the store's clock, as in the kit: one host, one
	// clock (a skewed one, say).
	if mc.Clock == nil {
		mc.Clock = rc.Clock
	}
	m, err := core.NewManager(mc)
	if err != nil {
		t.Fatal(err)
	}
	if first != nil {
		first(m)
	}
	if rc.SyncInterval == 0 {
		rc.SyncInterval = testSync
	}
	if rc.InstanceID == "" {
		rc.InstanceID = name
	}
	if rc.MaxReconnectBackoff == 0 {
		rc.MaxReconnectBackoff = 200 * time.Millisecond
	}
	rc.Client = c
	s, err := NewRedisStore(rc)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AttachManager(m); err != nil {
		t.Fatal(err)
	}
	in := &instance{m: m, s: s, c: c, rec: record(m.Bus())}
	var once sync.Once
	in.close = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := s.Close(ctx); err != nil {
				t.Errorf("close %s: %v", name, err)
			}
			in.rec.stop()
		})
	}
	t.Cleanup(in.close)
	return in
}

// breakerOf returns the breaker of m's endpoint name, creating the
// endpoint on first use.
func breakerOf(m *core.Manager, name string) (*core.Breaker, error) {
	e, err := m.Endpoint(name)
	if err != nil {
		return nil, err
	}
	return e.Breaker(), nil
}

func (in *instance) breaker(t testing.TB, endpoint string) *core.Breaker {
	t.Helper()
	b, err := breakerOf(in.m, endpoint)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// loaded waits until the store has read the endpoint's shared state once.
// pairOnAPI starts instances a and b with breaker config bc, waits until
// both have loaded endpoint api, and returns them with their breakers.
func pairOnAPI(t testing.TB, srv *redistest.Server, bc core.BreakerConfig) (a, b *instance, ba, bb *core.Breaker) {
	t.Helper()
	a = newInstance(t, srv, "a", bc, RedisConfig{})
	b = newInstance(t, srv, "b", bc, RedisConfig{})
	a.loaded(t, "api")
	b.loaded(t, "api")
	return a, b, a.breaker(t, "api"), b.breaker(t, "api")
}

func (in *instance) loaded(t testing.TB, endpoint string) {
	t.Helper()
	start := in.s.rounds.Load()
	in.breaker(t, endpoint)
	wait.For(t, testWait, "a sync round of "+in.s.InstanceID(), func() bool { return in.s.rounds.Load() > start+1 })
}

func isLocal(endpoint string, to events.State) func(events.Event) bool {
	return func(e events.Event) bool {
		c, ok := e.(events.ClusterStateChange)
		return ok && c.Endpoint == endpoint && c.NewState == to && c.Local
	}
}

// alerts runs the breaker alert handler on the instance's bus in cluster
// mode, as a service sharing state does, and returns its alert.Manager.
func (in *instance) alerts(t testing.TB) *alert.Manager {
	t.Helper()
	am, err := alert.NewManager(alert.ManagerConfig{Bus: in.m.Bus(), ClusterAlerts: true, EventBuffer: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = am.Close(context.Background()) })
	return am
}

// alertsFor counts the alerts an alert.Manager fired for endpoint.
func alertsFor(am *alert.Manager, endpoint string) int {
	n := 0
	for _, a := range am.Recent() {
		if a.Type.Metadata[alert.MetaEndpoint] == endpoint {
			n++
		}
	}
	return n
}

// aggKey is the key of endpoint's window aggregates for breakers
// configured as cfg (defaults filled in).
func aggKey(endpoint string, cfg core.BreakerConfig) string {
	if cfg.RollingWindow == 0 {
		cfg.RollingWindow = 10 * time.Second
	}
	if cfg.WindowBuckets == 0 {
		cfg.WindowBuckets = 10
	}
	l := layoutOf(cfg)
	k := newRedisKeys("bulwark", endpoint)
	return strings.TrimSuffix(k.state, ":state") + fmt.Sprintf(":w2:%d:%d", l.width, l.n)
}
