package store

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
	"github.com/bulwark-go/bulwark/internal/redistest"
	"github.com/bulwark-go/bulwark/internal/wait"
)

// At N = 100, as at 2, the failure rate of the cluster as a whole opens
// every instance, although no instance crosses it alone, and each opens in
// the first round it begins after the last instance pushed its calls.
// Every instance's window counts each call of the cluster once, and every
// instance's calls are needed to reach MinRequestsForRate, so a lost push
// keeps the breakers closed.
func TestRedisGlobalThresholdOpensHundredInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("100 instances on one Redis: skipped under -short")
	}
	const (
		n = 100
		k = 4 // calls per instance: k successes, then k failures
	)
	srv := redistest.Start(t)
	// 50% failures over the cluster's 2k calls per instance: the threshold
	// exactly, once every instance's calls are counted.
	cfg := core.BreakerConfig{FailureThreshold: 1000, FailureRateThreshold: 50, MinRequestsForRate: n * 2 * k, RollingWindow: 10 * time.Second}
	stores := make([]*RedisStore, n)
	breakers := make([]*core.Breaker, n)
	opened := make([]atomic.Int64, n) // the store's sync rounds when the breaker opened
	var c *redis.Client
	for i := range n {
		if i%scaleGroup == 0 {
			c = newTestClient(t, srv) // shared by a group, as in TestScale
		}
		m, err := core.NewManager(core.ManagerConfig{Defaults: core.EndpointConfig{Breaker: &cfg}})
		if err != nil {
			t.Fatal(err)
		}
		s, err := NewRedisStore(RedisConfig{Client: c, InstanceID: fmt.Sprintf("inst-%03d", i), SyncInterval: testSync, Logger: fileQuiet})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := s.Close(ctx); err != nil {
				t.Errorf("close %s: %v", s.InstanceID(), err)
			}
		})
		if err := s.AttachManager(m); err != nil {
			t.Fatal(err)
		}
		b, err := breakerOf(m, "api")
		if err != nil {
			t.Fatal(err)
		}
		opened[i].Store(-1)
		b.OnStateChange(func(e events.StateChange) {
			if e.NewState == events.Open {
				opened[i].CompareAndSwap(-1, int64(s.rounds.Load()))
			}
		})
		stores[i], breakers[i] = s, b
	}
	calls := func(o core.Outcome) {
		t.Helper()
		for _, b := range breakers {
			for range k {
				p, err := b.Allow()
				if err != nil {
					t.Fatalf("%s refused a call before the cluster crossed the threshold: %v", b.Name(), err)
				}
				p.Report(o, 0)
			}
		}
	}
	syncRounds(t, 2, "after loading", stores...)

	// The successes: once pushed, every instance counts them all, once.
	calls(core.Success)
	syncRounds(t, 2, "after the successes", stores...)
	syncRounds(t, 2, "with nothing new", stores...)
	for i, b := range breakers {
		if s := b.Snapshot(); s.WindowRequests != n*k || s.WindowFailures != 0 || s.State != events.Closed {
			t.Errorf("%s: window of %d calls, %d failed, %s; want the cluster's %d, none failed, Closed",
				stores[i].InstanceID(), s.WindowRequests, s.WindowFailures, s.State, n*k)
		}
	}

	// The failures: the cluster reaches the threshold with the last of
	// them, no instance on its own.
	calls(core.Failure)
	start := make([]int64, n)
	for i, s := range stores {
		start[i] = int64(s.rounds.Load())
	}
	began := time.Now()
	// The stores' rounds do not run in step (100 of them share two cores
	// here), so the bound is counted from the moment every store has
	// pushed the failures, not from the calls.
	mid := pushedRounds(t, "the failures", stores...)
	wait.For(t, testWait, "every instance to open", func() bool {
		for _, b := range breakers {
			if b.State() != events.Open {
				return false
			}
		}
		return true
	})
	t.Logf("%d instances open %v after the last call (sync interval %v)", n, time.Since(began), testSync)
	worst := int64(0)
	for i, s := range stores {
		// The round in flight when the last push landed may have read
		// Redis before it; the next one must not. opened counts the
		// rounds completed before the one that opened the breaker.
		worst = max(worst, opened[i].Load()-start[i])
		if d := opened[i].Load() - int64(mid[i]); d > 1 {
			t.Errorf("%s opened %d sync rounds after every store had pushed its calls, want at most 1", s.InstanceID(), d)
		}
	}
	t.Logf("the last to open did %d sync rounds after the calls", worst)

	// One instance won the transition; its reason counts each call once.
	raw := newTestClient(t, srv)
	h := raw.HGetAll(context.Background(), newRedisKeys("bulwark", "api").state).Val()
	if h["version"] != "1" || h["state"] != "Open" {
		t.Errorf("shared state %v, want one transition to Open", h)
	}
	if want := fmt.Sprintf("over %d calls", n*2*k); !strings.Contains(h["reason"], want) {
		t.Errorf("the winner's reason %q, want %q: the cluster's window did not count each call once", h["reason"], want)
	}
}

// syncRounds waits until each of stores has completed k more sync rounds,
// and returns each store's count of rounds at that moment.
func syncRounds(t testing.TB, k uint64, what string, stores ...*RedisStore) []uint64 {
	t.Helper()
	start := make([]uint64, len(stores))
	for i, s := range stores {
		start[i] = s.rounds.Load()
	}
	now := make([]uint64, len(stores))
	wait.For(t, testWait, fmt.Sprintf("%d sync rounds of every store %s", k, what), func() bool {
		for i, s := range stores {
			if now[i] = s.rounds.Load(); now[i] < start[i]+k {
				return false
			}
		}
		return true
	})
	return now
}

// pushedRounds waits until each of stores has pushed what was recorded
// before the call, and returns each store's count of rounds at that
// moment. A store's round in flight at the call may have taken its counts
// before; its next one pushes them. From then on, a store's round in
// flight may have read Redis before the last push landed; its next one
// reads them all.
func pushedRounds(t testing.TB, what string, stores ...*RedisStore) []uint64 {
	t.Helper()
	return syncRounds(t, 2, "to push "+what, stores...)
}
