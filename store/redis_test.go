package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
	"github.com/bulwark-go/bulwark/internal/redistest"
	"github.com/bulwark-go/bulwark/internal/wait"
)

func TestRedisTripOnOneInstanceOpensTheOther(t *testing.T) {
	srv := redistest.Start(t)
	a, b, ba, bb := pairOnAPI(t, srv, core.BreakerConfig{})
	if !ba.Trip("test trip") {
		t.Fatal("trip refused")
	}
	wait.For(t, testWait, "b to open", func() bool { return bb.State() == events.Open })
	if got, want := bb.Snapshot().OpenUntil.UnixMilli(), ba.Snapshot().OpenUntil.UnixMilli(); got != want {
		t.Errorf("b open until %d, a %d", got, want)
	}
	wait.For(t, testWait, "a's winner event", func() bool { return a.rec.count(isWin("api", events.Open)) == 1 })
	if n := b.rec.count(isWin("api", events.Open)); n != 0 {
		t.Errorf("b announced %d cluster transitions, want 0:\n%s", n, b.rec.dump())
	}
}

func TestRedisGlobalThresholdOpensEveryInstance(t *testing.T) {
	srv := redistest.Start(t)
	// Consecutive failures never trip here: only the rate over the cluster.
	cfg := core.BreakerConfig{FailureThreshold: 1000, FailureRateThreshold: 50, MinRequestsForRate: 10, RollingWindow: 10 * time.Second}
	a, b, ba, bb := pairOnAPI(t, srv, cfg)

	var openedA, openedB atomic.Int64 // sync rounds counted when each opened
	openedA.Store(-1)
	openedB.Store(-1)
	ba.OnStateChange(func(e events.StateChange) {
		if e.NewState == events.Open {
			openedA.CompareAndSwap(-1, int64(a.s.rounds.Load()))
		}
	})
	bb.OnStateChange(func(e events.StateChange) {
		if e.NewState == events.Open {
			openedB.CompareAndSwap(-1, int64(b.s.rounds.Load()))
		}
	})
	// Each instance: 6 calls, 4 failed. Alone, below MinRequestsForRate;
	// together 12 calls at 67% failures, above the 50% threshold.
	for _, br := range []*core.Breaker{ba, bb} {
		for i := range 6 {
			o := core.Success
			if i%3 != 0 {
				o = core.Failure
			}
			p, err := br.Allow()
			if err != nil {
				t.Fatal(err)
			}
			p.Report(o, 0)
		}
		if br.State() != events.Closed {
			t.Fatalf("%s opened on local counts alone", br.Name())
		}
	}
	start := time.Now()
	mid := pushedRounds(t, "the calls", a.s, b.s)
	wait.For(t, testWait, "both to open", func() bool { return ba.State() == events.Open && bb.State() == events.Open })
	t.Logf("both open %v after the last call (sync interval %v)", time.Since(start), testSync)
	// As in TestRedisGlobalThresholdOpensHundredInstances: the round in
	// flight when the last push landed may have missed it, the next one
	// must not.
	for i, opened := range []int64{openedA.Load(), openedB.Load()} {
		if d := opened - int64(mid[i]); d > 1 {
			t.Errorf("%s opened %d sync rounds after both had pushed their calls, want at most 1", []string{"a", "b"}[i], d)
		}
	}
	if s := bb.Snapshot(); s.WindowRequests < 12 && s.State == events.Closed {
		t.Errorf("b's window %d calls", s.WindowRequests)
	}
	settle(t, a, b)
	if n := a.rec.count(isWin("api", events.Open)) + b.rec.count(isWin("api", events.Open)); n != 1 {
		t.Errorf("%d winner events, want 1:\na:\n%s\nb:\n%s", n, a.rec.dump(), b.rec.dump())
	}
}

// settle waits until every instance has handled two more sync intervals,
// so that whatever was queued before has been dealt with.
func settle(t testing.TB, ins ...*instance) {
	t.Helper()
	for _, in := range ins {
		start := in.s.ticks.Load()
		wait.For(t, testWait, "sync intervals of "+in.s.InstanceID(), func() bool { return in.s.ticks.Load() >= start+2 })
	}
}

func TestRedisRaceHasOneWinnerAndOneAlert(t *testing.T) {
	srv := redistest.Start(t)
	a := newInstance(t, srv, "a", core.BreakerConfig{}, RedisConfig{})
	b := newInstance(t, srv, "b", core.BreakerConfig{}, RedisConfig{})
	alertsA, alertsB := a.alerts(t), b.alerts(t)
	const n = 20
	for i := range n {
		name := fmt.Sprintf("race-%d", i)
		a.breaker(t, name)
		b.breaker(t, name)
	}
	settle(t, a, b)
	for i := range n {
		name := fmt.Sprintf("race-%d", i)
		ba, bb := a.breaker(t, name), b.breaker(t, name)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for _, br := range []*core.Breaker{ba, bb} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				br.Trip("both at once")
			}()
		}
		close(start)
		wg.Wait()
	}
	settle(t, a, b)
	for i := range n {
		name := fmt.Sprintf("race-%d", i)
		wins := a.rec.count(isWin(name, events.Open)) + b.rec.count(isWin(name, events.Open))
		if wins != 1 {
			t.Errorf("%s: %d winner events, want 1", name, wins)
		}
		if sa, sb := a.breaker(t, name).State(), b.breaker(t, name).State(); sa != events.Open || sb != events.Open {
			t.Errorf("%s: a %s, b %s", name, sa, sb)
		}
	}
	// The alert handlers (cluster mode) raise one alert per endpoint,
	// although both instances saw a local StateChange for most of them.
	wait.For(t, testWait, "the alerts", func() bool { return len(alertsA.Recent())+len(alertsB.Recent()) >= n })
	settle(t, a, b)
	for i := range n {
		name := fmt.Sprintf("race-%d", i)
		if got := alertsFor(alertsA, name) + alertsFor(alertsB, name); got != 1 {
			t.Errorf("%s: %d alerts, want 1", name, got)
		}
	}
	localOpen := func(e events.Event) bool {
		sc, ok := e.(events.StateChange)
		return ok && sc.NewState == events.Open && !sc.Remote
	}
	t.Logf("%d trips: %d local StateChange events to Open (what per-instance alerting would fire), %d alerts",
		n, a.rec.count(localOpen)+b.rec.count(localOpen), len(alertsA.Recent())+len(alertsB.Recent()))
	local := func(e events.Event) bool { c, ok := e.(events.ClusterStateChange); return ok && c.Local }
	if a.rec.count(local)+b.rec.count(local) != 0 {
		t.Errorf("local decisions while Redis was up:\n%s%s", a.rec.dump(), b.rec.dump())
	}
}

func TestRedisLateInstanceLoadsTheSharedState(t *testing.T) {
	srv := redistest.Start(t)
	a := newInstance(t, srv, "a", core.BreakerConfig{}, RedisConfig{})
	a.loaded(t, "api")
	a.breaker(t, "api").Trip("before b started")
	wait.For(t, testWait, "the winner event", func() bool { return a.rec.count(isWin("api", events.Open)) == 1 })
	b := newInstance(t, srv, "b", core.BreakerConfig{}, RedisConfig{})
	bb := b.breaker(t, "api")
	wait.For(t, testWait, "b to load Open", func() bool { return bb.State() == events.Open })
	if bb.RetryAfter() <= 0 || bb.RetryAfter() > time.Minute {
		t.Errorf("b retry after %v", bb.RetryAfter())
	}
}

func TestRedisControlsAreClusterWide(t *testing.T) {
	srv := redistest.Start(t)
	a, b, ba, bb := pairOnAPI(t, srv, core.BreakerConfig{})
	ctx := context.Background()
	steps := []struct {
		do   func() error
		want events.State
	}{
		{func() error { return b.s.ForceOpen(ctx, "api", "maintenance") }, events.ForcedOpen},
		{func() error { return a.s.Reset(ctx, "api") }, events.Closed},
		{func() error { return a.s.Disable(ctx, "api") }, events.Disabled},
		{func() error { return b.s.Reset(ctx, "api") }, events.Closed},
	}
	for i, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		wait.For(t, testWait, fmt.Sprintf("step %d: both %s", i, st.want), func() bool { return ba.State() == st.want && bb.State() == st.want })
	}
	if r := ba.Snapshot().Reason; r != "reset" {
		t.Errorf("a's reason %q", r)
	}
	if n := b.rec.count(isWin("api", events.ForcedOpen)); n != 1 {
		t.Errorf("b announced force-open %d times", n)
	}
	// An endpoint no instance uses yet: the state waits in Redis.
	if err := a.s.ForceOpen(ctx, "later", "not deployed"); err != nil {
		t.Fatal(err)
	}
	bl := b.breaker(t, "later")
	wait.For(t, testWait, "b's new breaker to load ForcedOpen", func() bool { return bl.State() == events.ForcedOpen })
	if r := bl.Snapshot().Reason; r != "forced open: not deployed" {
		t.Errorf("reason %q", r)
	}
	if err := a.s.Reset(ctx, "bad\x00name"); !errors.Is(err, core.ErrInvalidEndpoint) {
		t.Errorf("bad name: %v", err)
	}
}

func TestRedisHalfOpenProbesAreCountedClusterWide(t *testing.T) {
	srv := redistest.Start(t)
	cfg := core.BreakerConfig{Timeout: 100 * time.Millisecond, HalfOpenMaxRequests: 2, SuccessThreshold: 2, ProbeTimeout: time.Minute}
	a, b, ba, bb := pairOnAPI(t, srv, cfg)
	ba.Trip("test")
	wait.For(t, testWait, "b to open", func() bool { return bb.State() == events.Open })
	wait.For(t, testWait, "the open time to pass", func() bool { return ba.RetryAfter() == 0 && bb.RetryAfter() == 0 })

	// Both instances get calls; none report, so each admitted probe keeps
	// its slot. The cluster must admit at most 2 in all.
	var permits []core.Permit
	admitted := func() int { return len(permits) }
	try := func(br *core.Breaker) {
		if p, err := br.Allow(); err == nil {
			permits = append(permits, p)
		}
	}
	startA, startB := a.s.rounds.Load(), b.s.rounds.Load()
	wait.For(t, testWait, "probes to be claimed and a few sync rounds to pass", func() bool {
		try(ba)
		try(bb)
		return admitted() > 0 && a.s.rounds.Load() > startA+3 && b.s.rounds.Load() > startB+3
	})
	if admitted() > 2 {
		t.Fatalf("%d probes admitted across the cluster, want at most 2", admitted())
	}
	t.Logf("%d probes admitted", admitted())
	for _, p := range permits {
		p.Report(core.Success, 0)
	}
	if admitted() == 2 {
		wait.For(t, testWait, "both to close", func() bool { return ba.State() == events.Closed && bb.State() == events.Closed })
	}
}
