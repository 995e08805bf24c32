package store

import (
	"context"
	"github.com/bulwark-go/bulwark/events"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/internal/redistest"
	"github.com/bulwark-go/bulwark/internal/wait"
)

// Each instance's claim on probe slots is a lease of its own: renewed, it
// keeps the others out; unrenewed, it lapses and the slots return; given
// back, they return at once; a new process under the same instance ID
// takes its predecessor's slots over.
func TestRedisProbeClaimsAreLeases(t *testing.T) {
	srv := redistest.Start(t)
	c := newTestClient(t, srv)
	ctx := context.Background()
	keys := newRedisKeys("bulwark", "api")
	if err := c.HSet(ctx, keys.state, "version", "3", "state", "HalfOpen").Err(); err != nil {
		t.Fatal(err)
	}
	const lease = 300 * time.Millisecond
	claim := func(instance string, want int) int {
		t.Helper()
		v, err := claimScript.Run(ctx, c, []string{keys.state, keys.probes}, 3, want, 2, lease.Milliseconds(), instance, time.Hour.Milliseconds()).Result()
		if err != nil {
			t.Fatal(err)
		}
		n, err := parseClaimReply(v, want)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := claim("x", 2); n != 2 {
		t.Fatalf("x got %d of 2 free slots", n)
	}
	if n := claim("y", 2); n != 0 {
		t.Fatalf("y got %d slots that x holds", n)
	}
	// x renews past its first lease: y stays out.
	for range 3 {
		time.Sleep(lease / 2)
		if n := claim("x", 2); n != 2 {
			t.Fatalf("x's renewal kept %d slots", n)
		}
		if n := claim("y", 2); n != 0 {
			t.Fatalf("y got %d slots while x renews", n)
		}
	}
	// x stops renewing: its slots return after its lease.
	time.Sleep(lease + 50*time.Millisecond)
	if n := claim("y", 2); n != 2 {
		t.Fatalf("y got %d slots after x's lease lapsed", n)
	}
	// A new process under y's ID takes y's slots over; giving them back
	// frees them at once.
	if n := claim("y", 1); n != 1 {
		t.Fatalf("y's successor got %d of its predecessor's slots", n)
	}
	if n := claim("x", 2); n != 1 {
		t.Fatalf("x got %d slots, want the one y gave up", n)
	}
	if n := claim("y", 0); n != 0 {
		t.Fatalf("giving back kept %d", n)
	}
	if n := claim("x", 2); n != 2 {
		t.Fatalf("x got %d slots after y gave its back", n)
	}
	// Another round, or no longer half-open: nothing.
	if err := c.HSet(ctx, keys.state, "version", "4").Err(); err != nil {
		t.Fatal(err)
	}
	if n := claim("x", 2); n != 0 {
		t.Fatalf("a claim for round 3 in round 4 got %d", n)
	}
}

// An instance that wins the half-open transition without having taken a
// call while the breaker was open (its breaker was only looked at, by an
// admin page, say) claims no probe slots with it, which its renewals
// would keep from the instances whose calls wait for probes: those claim
// them, and the breaker closes.
func TestRedisAnIdleInstanceClaimsNoProbeSlots(t *testing.T) {
	srv := redistest.Start(t)
	bc := core.BreakerConfig{FailureThreshold: 1, Timeout: 300 * time.Millisecond, SuccessThreshold: 1}
	a, _, ba, bb := pairOnAPI(t, srv, bc)
	bb.Trip("down")
	wait.For(t, testWait, "a to apply the trip", func() bool { return ba.State() == events.Open })
	wait.For(t, testWait, "a to win the half-open transition", func() bool {
		return ba.Snapshot().State == events.HalfOpen && a.rec.count(isWin("api", events.HalfOpen)) == 1
	})
	took := wait.For(t, testWait, "b to admit a probe", func() bool {
		p, err := bb.Allow()
		if err != nil {
			return false
		}
		p.Report(core.Success, 0)
		return true
	})
	wait.For(t, testWait, "the breakers to close", func() bool { return ba.State() == events.Closed && bb.State() == events.Closed })
	t.Logf("b probed %v after a won the half-open round (sync interval %v)", took.Round(time.Millisecond), testSync)
}
