package store

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
	"github.com/bulwark-go/bulwark/internal/redistest"
	"github.com/bulwark-go/bulwark/internal/wait"
)

// A breaker may still call a listener that Close has just cancelled (a
// delivery already under way). A transition racing Close must not leave
// the detached breaker with a probe limit of 0, or it would go HalfOpen
// and reject every call for good.
func TestCloseRacingATransitionLeavesNoProbeLimit(t *testing.T) {
	srv := redistest.Start(t)
	clk := core.NewFakeClock(time.Now())
	m, err := core.NewManager(core.ManagerConfig{
		Defaults: core.EndpointConfig{Breaker: &core.BreakerConfig{FailureThreshold: 1, Timeout: time.Second}},
		Clock:    clk,
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := breakerOf(m, "api")
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	// Registered before the store's listener, so it runs first.
	b.OnStateChange(func(e events.StateChange) {
		if e.NewState == events.Open {
			once.Do(func() { close(entered); <-release })
		}
	})
	s, err := NewRedisStore(RedisConfig{Client: newTestClient(t, srv), SyncInterval: testSync, InstanceID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AttachManager(m); err != nil {
		t.Fatal(err)
	}
	wait.For(t, testWait, "two sync rounds", func() bool { return s.rounds.Load() > 1 })

	tripped := make(chan struct{})
	go func() {
		defer close(tripped)
		p, err := b.Allow()
		if err == nil {
			p.Report(core.Failure, 0)
		}
	}()
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	close(release) // the store's listener, copied before Close cancelled it, runs now
	<-tripped

	clk.Advance(time.Second) // open timeout
	if _, err := b.Allow(); err != nil {
		clk.Advance(time.Hour) // and past any probe timeout
		_, err2 := b.Allow()
		t.Fatalf("breaker detached by Close admits no probe: %v; an hour later: %v", err, err2)
	}
}

// Close shares what it owes before it returns: a transition made just
// before Close (a health monitor releasing its hold as it stops, say) is
// in Redis afterwards, and the instance's window counts are not.
func TestRedisCloseSharesTheLastTransitions(t *testing.T) {
	srv := redistest.Start(t)
	raw := newTestClient(t, srv)
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		prepare func(*core.Breaker)
		last    func(*core.Breaker)
		want    events.State
	}{
		{"trip", nil, func(b *core.Breaker) { b.Trip("right before close") }, events.Open},
		{"release", func(b *core.Breaker) { b.ForceOpen("probe failing") }, func(b *core.Breaker) { b.Release("probe passing") }, events.HalfOpen},
		{"reset", func(b *core.Breaker) { b.Trip("down") }, func(b *core.Breaker) { b.Reset() }, events.Closed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys := newRedisKeys("bulwark", tc.name)
			shared := func() string { return raw.HGet(ctx, keys.state, "state").Val() }
			in := newInstance(t, srv, "a", core.BreakerConfig{}, RedisConfig{})
			in.loaded(t, tc.name)
			b := in.breaker(t, tc.name)
			if tc.prepare != nil {
				tc.prepare(b)
				wait.For(t, 10*time.Second, "the first transition in Redis", func() bool { return shared() == b.State().String() })
			}
			agg := aggKey(tc.name, core.BreakerConfig{})
			if tc.prepare == nil {
				b.RecordSuccess() // a call, for the window to hold
				wait.For(t, 10*time.Second, "the window entry", func() bool { return raw.HExists(ctx, agg, "i:a").Val() })
			}
			tc.last(b)
			in.close()
			if got := shared(); got != tc.want.String() {
				t.Errorf("Redis holds %q after Close, want %s", got, tc.want)
			}
			if raw.HExists(ctx, agg, "i:a").Val() {
				t.Error("the window entry of the closed instance is still there")
			}
		})
	}
}
