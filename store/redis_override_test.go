package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/internal/redistest"
	"github.com/bulwark-go/bulwark/internal/wait"
)

// overrideLog keeps what an OnOverride hook was given, and when: the time
// and the store's count of completed sync rounds.
type overrideLog struct {
	rounds atomic.Pointer[atomic.Uint64] // the store's, once it exists

	mu    sync.Mutex
	got   []Override
	at    []time.Time
	round []uint64
}

func (l *overrideLog) hook(o Override) {
	var r uint64
	if c := l.rounds.Load(); c != nil {
		r = c.Load()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, o)
	l.at = append(l.at, time.Now())
	l.round = append(l.round, r)
}

// roundOf returns the store's count of sync rounds when the hook was given
// endpoint's version.
func (l *overrideLog) roundOf(endpoint string, version uint64) (uint64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, o := range l.got {
		if o.Endpoint == endpoint && o.Version == version {
			return l.round[i], true
		}
	}
	return 0, false
}

func (l *overrideLog) all() []Override {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.got)
}

// last returns the last override delivered for endpoint, and when.
func (l *overrideLog) last(endpoint string) (Override, time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.got) - 1; i >= 0; i-- {
		if l.got[i].Endpoint == endpoint {
			return l.got[i], l.at[i], true
		}
	}
	return Override{}, time.Time{}, false
}

// versionsInOrder fails unless every endpoint's deliveries have growing
// versions.
func (l *overrideLog) versionsInOrder(t *testing.T, who string) {
	t.Helper()
	seen := map[string]uint64{}
	for _, o := range l.all() {
		if o.Version <= seen[o.Endpoint] {
			t.Errorf("%s: %q version %d delivered after %d", who, o.Endpoint, o.Version, seen[o.Endpoint])
		}
		seen[o.Endpoint] = o.Version
	}
}

// newOverrideInstance is newInstance with an OnOverride hook.
func newOverrideInstance(t *testing.T, srv *redistest.Server, name string, rc RedisConfig) (*instance, *overrideLog) {
	t.Helper()
	l := &overrideLog{}
	rc.OnOverride = l.hook
	in := newInstance(t, srv, name, core.BreakerConfig{}, rc)
	l.rounds.Store(&in.s.rounds)
	return in, l
}

func TestRedisOverridesReachTheOtherInstances(t *testing.T) {
	srv := redistest.Start(t)
	a, la := newOverrideInstance(t, srv, "a", RedisConfig{})
	b, lb := newOverrideInstance(t, srv, "b", RedisConfig{})
	a.loaded(t, "api")
	b.loaded(t, "api")
	ctx := context.Background()

	doc := []byte(`{"breaker":{"failure_threshold":3}}`)
	sent := time.Now()
	got, err := a.s.PutOverride(ctx, Override{Endpoint: "api", Settings: doc, Version: 99, Instance: "someone"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Endpoint != "api" || string(got.Settings) != string(doc) || got.Version != 1 || got.Instance != "a" ||
		got.At.Before(sent.Add(-time.Second)) || got.At.After(time.Now().Add(time.Second)) {
		t.Fatalf("stored %+v", got)
	}
	var at time.Time
	wait.For(t, testWait, "b's OnOverride", func() bool {
		var o Override
		var ok bool
		o, at, ok = lb.last("api")
		return ok && o.Version == 1
	})
	o, _, _ := lb.last("api")
	if string(o.Settings) != string(doc) || o.Instance != "a" || !o.At.Equal(got.At) {
		t.Errorf("b got %+v, a stored %+v", o, got)
	}
	// Pub/sub: far sooner than a sync round.
	t.Logf("PutOverride on a -> OnOverride on b: %v (sync interval %v)", at.Sub(sent), testSync)
	if d := at.Sub(sent); d > testSync {
		t.Errorf("b got the change %v after it was put, want within %v (pub/sub)", d, testSync)
	}

	// Versions grow, and a removal travels too.
	if got, err = b.s.PutOverride(ctx, Override{Endpoint: "api", Settings: []byte(`{"timeout":"1s"}`)}); err != nil || got.Version != 2 || got.Instance != "b" {
		t.Fatalf("second put: %+v %v", got, err)
	}
	wait.For(t, testWait, "b's change on a", func() bool { o, _, ok := la.last("api"); return ok && o.Version == 2 })
	if got, err = a.s.PutOverride(ctx, Override{Endpoint: "api"}); err != nil || got.Version != 3 || got.Settings != nil {
		t.Fatalf("removal: %+v %v", got, err)
	}
	wait.For(t, testWait, "the removal on b", func() bool { o, _, ok := lb.last("api"); return ok && o.Version == 3 })
	if o, _, _ := lb.last("api"); o.Settings != nil {
		t.Errorf("removal delivered with settings %q", o.Settings)
	}
	settle(t, a, b)
	// Neither instance hears its own changes back.
	for _, o := range la.all() {
		if o.Instance == "a" {
			t.Errorf("a was given its own change %+v", o)
		}
	}
	for _, o := range lb.all() {
		if o.Instance == "b" {
			t.Errorf("b was given its own change %+v", o)
		}
	}
	la.versionsInOrder(t, "a")
	lb.versionsInOrder(t, "b")

	// Bad input is refused before Redis.
	for _, bad := range []Override{
		{Endpoint: "", Settings: []byte(`{}`)},
		{Endpoint: "api", Settings: []byte(`{oops`)},
		{Endpoint: "api", Settings: []byte{}},
		{Endpoint: "api", Settings: []byte(`"` + strings.Repeat("x", maxSettingsLen) + `"`)},
	} {
		if _, err := a.s.PutOverride(ctx, bad); err == nil {
			t.Errorf("PutOverride(%.60q) accepted", bad.Settings)
		}
	}
}

// A change whose message is lost reaches every instance by the sync
// round, within two sync intervals; nothing older than what an instance
// has seen is ever delivered to it.
func TestRedisOverridesSurviveLostMessages(t *testing.T) {
	srv := redistest.Start(t)
	a, la := newOverrideInstance(t, srv, "a", RedisConfig{})
	b, lb := newOverrideInstance(t, srv, "b", RedisConfig{})
	a.loaded(t, "api")
	b.loaded(t, "api")
	raw := newTestClient(t, srv)
	ctx := context.Background()
	keys := newRedisKeys("bulwark", "api")
	now := time.Now().UnixMilli()

	// Written as the put script writes it, without its message.
	if err := raw.HSet(ctx, keys.settings, "version", "5", "settings", `{"quiet":true}`, "instance", "c", "at", fmt.Sprint(now)).Err(); err != nil {
		t.Fatal(err)
	}
	if err := raw.Incr(ctx, "bulwark:changes").Err(); err != nil {
		t.Fatal(err)
	}
	startA, startB := a.s.rounds.Load(), b.s.rounds.Load()
	wait.For(t, testWait, "both to get version 5", func() bool {
		oa, _, okA := la.last("api")
		ob, _, okB := lb.last("api")
		return okA && okB && oa.Version == 5 && ob.Version == 5
	})
	// The round in flight when it was written may have read Redis before;
	// the next one must not. round counts the rounds completed before the
	// one that delivered it.
	for _, c := range []struct {
		who   string
		l     *overrideLog
		start uint64
	}{{"a", la, startA}, {"b", lb, startB}} {
		if r, _ := c.l.roundOf("api", 5); r-c.start > 1 {
			t.Errorf("%s got the change %d sync rounds after it was written, want at most 1", c.who, r-c.start)
		}
	}

	// Older versions, published or stored, are never applied after it.
	stale, _ := json.Marshal(wireSettings{Endpoint: "api", Version: 4, Instance: "c", At: now, Settings: `{"stale":true}`})
	if err := raw.Publish(ctx, "bulwark:settings", stale).Err(); err != nil {
		t.Fatal(err)
	}
	if err := raw.HSet(ctx, keys.settings, "version", "3").Err(); err != nil {
		t.Fatal(err)
	}
	settle(t, a, b)
	for _, l := range []*overrideLog{la, lb} {
		if o, _, _ := l.last("api"); o.Version != 5 {
			t.Errorf("version %d applied after version 5", o.Version)
		}
	}
	// A put goes on from the highest version either side has seen.
	if got, err := a.s.PutOverride(ctx, Override{Endpoint: "api", Settings: []byte(`{"new":1}`)}); err != nil || got.Version != 6 {
		t.Fatalf("put after the versions went back: %+v %v", got, err)
	}
	wait.For(t, testWait, "b to get version 6", func() bool { o, _, ok := lb.last("api"); return ok && o.Version == 6 })
	la.versionsInOrder(t, "a")
	lb.versionsInOrder(t, "b")
}

// The overrides outlive every instance: a store started later lists the
// live ones and, for the endpoints it follows, is given the latest change
// at once.
func TestRedisOverridesAreListedAfterARestart(t *testing.T) {
	srv := redistest.Start(t)
	a, _ := newOverrideInstance(t, srv, "a", RedisConfig{TTL: time.Second})
	ctx := context.Background()
	for i, name := range []string{"GET /b", "GET /a", "gone", "GET /{id}"} {
		if _, err := a.s.PutOverride(ctx, Override{Endpoint: name, Settings: []byte(fmt.Sprintf(`{"n":%d}`, i))}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.s.PutOverride(ctx, Override{Endpoint: "gone"}); err != nil {
		t.Fatal(err)
	}
	a.close()

	b, lb := newOverrideInstance(t, srv, "b", RedisConfig{})
	list, err := b.s.Overrides(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range list {
		names = append(names, o.Endpoint)
		if o.Instance != "a" || o.Version != 1 || o.Settings == nil {
			t.Errorf("listed %+v", o)
		}
	}
	if want := []string{"GET /a", "GET /b", "GET /{id}"}; !slices.Equal(names, want) {
		t.Fatalf("listed %q, want %q", names, want)
	}
	// Listed, so not delivered again; an endpoint b follows later that
	// was not listed is delivered at its first sync.
	b.loaded(t, "GET /a")
	settle(t, b)
	if got := lb.all(); len(got) != 0 {
		t.Errorf("delivered what Overrides returned: %+v", got)
	}
	c, lc := newOverrideInstance(t, srv, "c", RedisConfig{})
	c.loaded(t, "GET /{id}")
	wait.For(t, testWait, "c to catch up", func() bool { o, _, ok := lc.last("GET /{id}"); return ok && string(o.Settings) == `{"n":3}` })
}

// With Redis down, a change is refused and nothing is applied anywhere.
func TestRedisOverrideWithRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	a, la := newOverrideInstance(t, srv, "a", RedisConfig{})
	b, lb := newOverrideInstance(t, srv, "b", RedisConfig{})
	a.loaded(t, "api")
	b.loaded(t, "api")
	srv.Kill()
	ctx := context.Background()
	_, err := a.s.PutOverride(ctx, Override{Endpoint: "api", Settings: []byte(`{}`)})
	if !errors.Is(err, ErrRedisUnavailable) {
		t.Fatalf("PutOverride with Redis down: %v", err)
	}
	wait.For(t, testWait, "a degraded", func() bool { return !a.s.healthy.Load() })
	if _, err := a.s.PutOverride(ctx, Override{Endpoint: "api", Settings: []byte(`{}`)}); !errors.Is(err, ErrRedisUnavailable) {
		t.Fatalf("PutOverride while degraded: %v", err)
	}
	if _, err := b.s.Overrides(ctx); !errors.Is(err, ErrRedisUnavailable) {
		t.Fatalf("Overrides with Redis down: %v", err)
	}
	srv.Restart()
	wait.For(t, testWait, "both back", func() bool { return a.s.healthy.Load() && b.s.healthy.Load() })
	settle(t, a, b)
	if got := append(la.all(), lb.all()...); len(got) != 0 {
		t.Errorf("applied: %+v", got)
	}
	if list, err := b.s.Overrides(ctx); err != nil || len(list) != 0 {
		t.Errorf("Overrides after the outage: %+v %v", list, err)
	}
	if got, err := a.s.PutOverride(ctx, Override{Endpoint: "api", Settings: []byte(`{}`)}); err != nil || got.Version != 1 {
		t.Fatalf("PutOverride after the outage: %+v %v", got, err)
	}
	wait.For(t, testWait, "b to get it", func() bool { _, _, ok := lb.last("api"); return ok })
	if _, err := a.s.Overrides(ctx); err != nil {
		t.Fatal(err)
	}
	a.close()
	if _, err := a.s.PutOverride(ctx, Override{Endpoint: "api", Settings: []byte(`{}`)}); !errors.Is(err, ErrClosed) {
		t.Errorf("PutOverride after Close: %v", err)
	}
	if _, err := a.s.Overrides(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Overrides after Close: %v", err)
	}
}

// Settings keys and messages of nonsense are reported and ignored.
func TestRedisOverridesRejectGarbage(t *testing.T) {
	srv := redistest.Start(t)
	a, la := newOverrideInstance(t, srv, "a", RedisConfig{})
	raw := newTestClient(t, srv)
	ctx := context.Background()
	for _, n := range []string{"bad-hash", "bad-type", "bad-doc"} {
		a.loaded(t, n)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	now := fmt.Sprint(time.Now().UnixMilli())
	must(raw.HSet(ctx, newRedisKeys("bulwark", "bad-hash").settings, "version", "x7", "settings", "{}", "instance", "c", "at", now).Err())
	must(raw.Set(ctx, newRedisKeys("bulwark", "bad-type").settings, "a string", 0).Err())
	must(raw.HSet(ctx, newRedisKeys("bulwark", "bad-doc").settings, "version", "2", "settings", "{oops", "instance", "c", "at", now).Err())
	must(raw.SAdd(ctx, "bulwark:settings", "bad-doc", "bad\x00name").Err())
	must(raw.Publish(ctx, "bulwark:settings", `{"endpoint":"api","version":1,"instance":"c","at":1,"settings":"{}","extra":1}`).Err())
	for _, c := range []struct{ endpoint, contains string }{
		{"bad-hash", "not an integer"},
		{"bad-type", "not a hash"},
		{"bad-doc", "JSON"},
		{"", "settings message"},
	} {
		wait.For(t, testWait, "an error event for "+c.contains, func() bool { return a.rec.count(storeError(c.endpoint, c.contains)) >= 1 })
	}
	list, err := a.s.Overrides(ctx)
	if err != nil || len(list) != 0 {
		t.Errorf("Overrides listed garbage: %+v %v", list, err)
	}
	if got := la.all(); len(got) != 0 {
		t.Errorf("garbage delivered: %+v", got)
	}
	// A put replaces a key of the wrong type.
	if got, err := a.s.PutOverride(ctx, Override{Endpoint: "bad-type", Settings: []byte(`{}`)}); err != nil || got.Version != 1 {
		t.Fatalf("put over garbage: %+v %v", got, err)
	}
}
