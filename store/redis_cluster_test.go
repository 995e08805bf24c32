package store

import (
	"context"
	"fmt"
	"github.com/bulwark-go/bulwark/events"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/internal/redistest"
	"github.com/bulwark-go/bulwark/internal/wait"
)

// TestRedisCluster runs two instances against a three-master Redis
// Cluster: endpoints spread over the slots, each endpoint's keys in one
// slot, scripts and pipelines routed by go-redis, messages published from
// scripts on any node reaching subscribers on any other.
func TestRedisCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	cl := redistest.StartCluster(t, 3)
	client := func() redis.UniversalClient {
		c := redis.NewUniversalClient(&redis.UniversalOptions{
			Addrs:                 cl.Addrs(), // several addresses: a cluster client
			ContextTimeoutEnabled: true,
			DialTimeout:           time.Second,
			ReadTimeout:           time.Second,
			WriteTimeout:          time.Second,
		})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	cfg := core.BreakerConfig{FailureThreshold: 1000, FailureRateThreshold: 50, MinRequestsForRate: 10}
	rc := RedisConfig{SyncInterval: testSync, OpTimeout: time.Second}
	mc := core.ManagerConfig{Defaults: core.EndpointConfig{Breaker: &cfg}, Faults: &core.FaultLimits{}}
	a := newInstanceOf(t, client(), "a", mc, rc, nil)
	b := newInstanceOf(t, client(), "b", mc, rc, nil)
	const n = 12
	name := func(i int) string { return fmt.Sprintf("GET /cluster/{id}/%d", i) }
	for i := range n {
		a.breaker(t, name(i))
		b.breaker(t, name(i))
	}
	settle(t, a, b)
	if !a.s.healthy.Load() || !b.s.healthy.Load() {
		t.Fatal("not healthy on the cluster")
	}

	// Trips on either side reach the other.
	for i := range n {
		from, to := a, b
		if i%2 == 1 {
			from, to = b, a
		}
		from.breaker(t, name(i)).Trip("cluster trip")
		br := to.breaker(t, name(i))
		wait.For(t, testWait, name(i)+" to open across the cluster", func() bool { return br.State() == events.Open })
	}

	// Controls, and the global threshold, on another endpoint.
	ctx := context.Background()
	if err := a.s.Reset(ctx, name(0)); err != nil {
		t.Fatal(err)
	}
	b0 := b.breaker(t, name(0))
	wait.For(t, testWait, "the reset to reach b", func() bool { return b0.State() == events.Closed })
	for _, in := range []*instance{a, b} {
		br := in.breaker(t, name(0))
		for i := range 6 {
			p, err := br.Allow()
			if err != nil {
				t.Fatal(err)
			}
			o := core.Failure
			if i%3 == 0 {
				o = core.Success
			}
			p.Report(o, 0)
		}
	}
	a0 := a.breaker(t, name(0))
	wait.For(t, testWait, "the cluster-wide rate to open both", func() bool { return a0.State() == events.Open && b0.State() == events.Open })

	// Fault experiments and the list of instances, in their own slot.
	f, err := a.m.StartFault(core.Fault{Endpoint: name(1), Percent: 10, Status: 500})
	if err != nil {
		t.Fatal(err)
	}
	wait.For(t, testWait, "b to run a's experiment", func() bool { g, ok := runningFault(b.m, f.ID); return ok && g.Origin == "a" })
	b.m.StopFault(f.ID)
	wait.For(t, testWait, "a to end it, stopped on b", func() bool { _, ok := runningFault(a.m, f.ID); return !ok })
	wait.For(t, testWait, "a to list both instances", func() bool {
		return membersSay(a.latestMembers(), "a", map[string]bool{"a": true, "b": true})
	})
}
