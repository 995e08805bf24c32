package store

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/alert"
	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
	"github.com/bulwark-go/bulwark/internal/redistest"
	"github.com/bulwark-go/bulwark/internal/wait"
)

// halfOpenTimes records, on the real clock, when each breaker first went
// HalfOpen (follow), or when anything else first happened (mark).
type halfOpenTimes struct {
	mu sync.Mutex
	at map[string]time.Time
}

func (h *halfOpenTimes) follow(name string, b *core.Breaker) {
	b.OnStateChange(func(e events.StateChange) {
		if e.NewState == events.HalfOpen {
			h.mark(name)
		}
	})
}

func (h *halfOpenTimes) mark(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.at[name]; !ok {
		h.at[name] = time.Now()
	}
}

func (h *halfOpenTimes) get(name string) (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.at[name]
	return t, ok
}

// A component's hold is shared with its owner and lease: its renewals keep
// it on every instance, and when the owner stops renewing, the cluster
// goes HalfOpen within the lease and one sync interval, by one transition.
// An operator's hold never lapses.
func TestRedisHoldsAreSharedWithTheirLease(t *testing.T) {
	srv := redistest.Start(t)
	raw := newTestClient(t, srv)
	ctx := context.Background()
	ins := []*instance{
		newInstance(t, srv, "a", core.BreakerConfig{}, RedisConfig{}),
		newInstance(t, srv, "b", core.BreakerConfig{}, RedisConfig{}),
		newInstance(t, srv, "c", core.BreakerConfig{}, RedisConfig{}),
	}
	times := &halfOpenTimes{at: map[string]time.Time{}}
	for _, in := range ins {
		in.loaded(t, "db")
		in.loaded(t, "ops")
		times.follow(in.s.InstanceID(), in.breaker(t, "db"))
	}
	owner := ins[0].breaker(t, "db")
	const lease = 600 * time.Millisecond
	hold := func() time.Time {
		t.Helper()
		if !owner.Hold("health ping", "down", lease) {
			t.Fatal("Hold refused")
		}
		return owner.Snapshot().HoldUntil
	}
	until := hold()
	for _, in := range ins[1:] {
		b := in.breaker(t, "db")
		wait.For(t, testWait, in.s.InstanceID()+" to apply the hold", func() bool {
			s := b.Snapshot()
			// The owner's end, and one sync interval for its renewals to
			// arrive in.
			return s.State == events.ForcedOpen && s.HeldBy == "health ping" && s.HoldUntil.UnixMilli() == until.Add(testSync).UnixMilli()
		})
	}
	keys := newRedisKeys("bulwark", "db")
	h := raw.HGetAll(ctx, keys.state).Val()
	if h["held_by"] != "health ping" || h["hold_until"] != strconv.FormatInt(until.Add(testSync).UnixMilli(), 10) {
		t.Errorf("shared state %v lacks the hold's owner and end", h)
	}

	// The owner renews for three leases: every instance keeps the hold,
	// with the owner's latest end.
	first := until
	for end := time.Now().Add(3 * lease); time.Now().Before(end); {
		time.Sleep(lease / 6)
		until = hold()
	}
	for _, in := range ins {
		if at, ok := times.get(in.s.InstanceID()); ok {
			t.Fatalf("%s went HalfOpen at %v while the owner renewed its hold (first lease ended %v)", in.s.InstanceID(), at, first)
		}
	}
	for _, in := range ins[1:] {
		b := in.breaker(t, "db")
		wait.For(t, testWait, in.s.InstanceID()+" to follow the renewals", func() bool {
			return b.Snapshot().HoldUntil.UnixMilli() >= until.Add(-lease/2).UnixMilli()
		})
	}

	// The owner stops renewing: every instance is HalfOpen within the
	// lease and one sync interval (plus room for a loaded machine).
	const slack = 300 * time.Millisecond
	for _, in := range ins {
		name := in.s.InstanceID()
		wait.For(t, testWait, name+" to go HalfOpen", func() bool { _, ok := times.get(name); return ok })
		at, _ := times.get(name)
		late := at.Sub(until)
		t.Logf("%s HalfOpen %v after the lease ended", name, late)
		if late > testSync+slack {
			t.Errorf("%s went HalfOpen %v after the lease ended, want within a sync interval (%v)", name, late, testSync)
		}
		if st := in.breaker(t, "db").State(); st != events.HalfOpen {
			t.Errorf("%s is %s", name, st)
		}
	}
	settle(t, ins...)
	var held, lapsed int
	for _, in := range ins {
		held += in.rec.count(isWin("db", events.ForcedOpen))
		lapsed += in.rec.count(isWin("db", events.HalfOpen))
	}
	if held != 1 || lapsed != 1 {
		t.Errorf("%d cluster transitions to ForcedOpen and %d to HalfOpen, want 1 each (renewals are none)", held, lapsed)
	}
	if h := raw.HGetAll(ctx, keys.state).Val(); h["state"] != "HalfOpen" || h["held_by"] != "" {
		t.Errorf("shared state after the lapse: %v", h)
	}

	// An operator's hold has no owner and no end.
	if err := ins[0].s.ForceOpen(ctx, "ops", "maintenance"); err != nil {
		t.Fatal(err)
	}
	for _, in := range ins {
		b := in.breaker(t, "ops")
		wait.For(t, testWait, in.s.InstanceID()+" to apply the operator's hold", func() bool { return b.State() == events.ForcedOpen })
	}
	time.Sleep(2 * lease) // longer than any lease: nothing may lapse
	settle(t, ins...)
	for _, in := range ins {
		if s := in.breaker(t, "ops").Snapshot(); s.State != events.ForcedOpen || s.HeldBy != "" {
			t.Errorf("%s: the operator's hold is %s held by %q", in.s.InstanceID(), s.State, s.HeldBy)
		}
	}
	if st := raw.HGet(ctx, newRedisKeys("bulwark", "ops").state, "state").Val(); st != "ForcedOpen" {
		t.Errorf("shared operator's hold is %s", st)
	}
}

// isClusterChange matches every ClusterStateChange of endpoint.
func isClusterChange(endpoint string) func(events.Event) bool {
	return func(e events.Event) bool {
		c, ok := e.(events.ClusterStateChange)
		return ok && c.Endpoint == endpoint
	}
}

// An instance that starts and adopts the cluster's state (Open, an
// operator's hold, a component's hold) applies it as Remote and announces
// nothing: for its alerts, in either mode, it is not news.
func TestRedisAdoptedStateIsNotNews(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	a := newInstance(t, srv, "a", core.BreakerConfig{}, RedisConfig{})
	for _, n := range []string{"tripped", "forced", "held"} {
		a.loaded(t, n)
	}
	a.breaker(t, "tripped").Trip("down")
	if err := a.s.ForceOpen(ctx, "forced", "maintenance"); err != nil {
		t.Fatal(err)
	}
	if !a.breaker(t, "held").Hold("health ping", "down", time.Minute) {
		t.Fatal("Hold refused")
	}
	wait.For(t, testWait, "a's transitions in Redis", func() bool {
		return a.rec.count(isWin("tripped", events.Open))+a.rec.count(isWin("forced", events.ForcedOpen))+a.rec.count(isWin("held", events.ForcedOpen)) == 3
	})

	b := newInstance(t, srv, "b", core.BreakerConfig{}, RedisConfig{})
	clusterAlerts := b.alerts(t)
	localAlerts, err := alert.NewManager(alert.ManagerConfig{Bus: b.m.Bus(), EventBuffer: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = localAlerts.Close(context.Background()) })
	want := map[string]events.State{"tripped": events.Open, "forced": events.ForcedOpen, "held": events.ForcedOpen}
	for n, st := range want {
		br := b.breaker(t, n)
		wait.For(t, testWait, "b to adopt "+n, func() bool { return br.State() == st })
	}
	if s := b.breaker(t, "held").Snapshot(); s.HeldBy != "health ping" {
		t.Errorf("the adopted hold is held by %q", s.HeldBy)
	}
	settle(t, b)
	for n := range want {
		news := func(e events.Event) bool {
			sc, ok := e.(events.StateChange)
			return ok && sc.Endpoint == n && !sc.Remote && !sc.Restored
		}
		if c := b.rec.count(news); c != 0 {
			t.Errorf("%s: %d adopted transitions look like news:\n%s", n, c, b.rec.dump())
		}
		if c := b.rec.count(isClusterChange(n)); c != 0 {
			t.Errorf("%s: b announced %d cluster transitions for an adoption:\n%s", n, c, b.rec.dump())
		}
		if c := alertsFor(clusterAlerts, n) + alertsFor(localAlerts, n); c != 0 {
			t.Errorf("%s: %d alerts for an adopted state", n, c)
		}
	}
}

// A transition made as soon as a breaker is attached, before the store
// has loaded its shared state (a health monitor holds a breaker at its
// first check, right as Watch creates it), is a cluster transition like
// any other: proposed and announced, not pushed silently as a state the
// breaker had before.
func TestRedisFirstTransitionsAreAnnounced(t *testing.T) {
	srv := redistest.Start(t)
	in := newInstance(t, srv, "a", core.BreakerConfig{}, RedisConfig{})
	in.m.OnEndpoint(func(e *core.Endpoint) { // after the store's hook
		switch e.Name() {
		case "held":
			e.Breaker().Hold("health ping", "down", time.Minute)
		case "tripped":
			e.Breaker().Trip("down")
		}
	})
	for _, n := range []string{"held", "tripped"} {
		in.breaker(t, n)
	}
	settle(t, in)
	if n := in.rec.count(isWin("held", events.ForcedOpen)); n != 1 {
		t.Errorf("the first hold was announced %d times, want 1:\n%s", n, in.rec.dump())
	}
	if n := in.rec.count(isWin("tripped", events.Open)); n != 1 {
		t.Errorf("the first trip was announced %d times, want 1:\n%s", n, in.rec.dump())
	}
	if !core.ReplicationOf(in.breaker(t, "held")).HeldHere() {
		t.Error("the hold taken here no longer counts as this process's")
	}
}
