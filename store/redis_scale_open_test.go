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
	// Each store's round in flight when the calls ended may have taken its
	// counts before them; its next one pushes them. Once every store has
	// done both, all the calls are in Redis: mid holds each store's rounds
	// at that moment. The rounds of the stores do not run in step (100 of
	// them share two cores here), so the bound is counted from mid, not
	// from the calls.
	mid := make([]int64, n)
	wait.For(t, testWait, "every store to push its failures", func() bool {
		for i, s := range stores {
			if int64(s.rounds.Load()) < start[i]+2 {
				return false
			}
		}
		for i, s := range stores {
			mid[i] = int64(s.rounds.Load())
		}
		return true
	})
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
		// Redis before it; the next one must not.
		worst = max(worst, opened[i].Load()-start[i])
		if d := opened[i].Load() - mid[i]; d > 2 {
			t.Errorf("%s opened %d sync rounds after every store had pushed its calls, want at most 2", s.InstanceID(), d)
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

// syncRounds waits until each of stores has completed k more sync rounds.
func syncRounds(t testing.TB, k uint64, what string, stores ...*RedisStore) {
	t.Helper()
	start := make([]uint64, len(stores))
	for i, s := range stores {
		start[i] = s.rounds.Load()
	}
	wait.For(t, testWait, fmt.Sprintf("%d sync rounds of every store %s", k, what), func() bool {
		for i, s := range stores {
			if s.rounds.Load() < start[i]+k {
				return false
			}
		}
		return true
	})
}
