package core

import (
	"errors"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/events"
	"pgregory.net/rapid"
)

// TestBreakerStateMachineProperties drives a breaker with random calls,
// outcomes, clock steps, manual actions and component holds, and checks its
// invariants after every step.
//
// The draws of the first ops keep their order and ranges, so that the
// cases saved under testdata/rapid still replay as they were found.
func TestBreakerStateMachineProperties(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		cfg := BreakerConfig{
			FailureThreshold:    rapid.IntRange(1, 6).Draw(rt, "failureThreshold"),
			HalfOpenMaxRequests: rapid.IntRange(1, 4).Draw(rt, "halfOpenMax"),
			Timeout:             time.Duration(rapid.IntRange(1, 5).Draw(rt, "timeoutSec")) * time.Second,
			MinRequestsForRate:  rapid.IntRange(1, 10).Draw(rt, "minRequests"),
			ProbeTimeout:        10 * time.Second,
		}
		cfg.SuccessThreshold = rapid.IntRange(1, cfg.HalfOpenMaxRequests).Draw(rt, "successThreshold")
		clk := NewFakeClock(t0)
		cfg.Name, cfg.Clock = "prop", clk
		b, err := NewBreaker(cfg)
		if err != nil {
			rt.Fatal(err)
		}
		var published uint64
		b.OnStateChange(func(e events.StateChange) { published++ })
		var held []Permit // permits not yet reported
		var rejected, reported, failed int64
		prev := b.Snapshot()

		steps := rapid.IntRange(1, 200).Draw(rt, "steps")
		for range steps {
			before := b.State()
			events0 := published
			switch rapid.IntRange(0, 9).Draw(rt, "op") {
			case 0, 1, 2:
				p, err := b.Allow()
				if err != nil {
					rejected++
					var re *RejectedError
					if !errors.As(err, &re) {
						rt.Fatalf("rejection is not a *RejectedError: %v", err)
					}
					if before == events.Closed || before == events.Disabled {
						rt.Fatalf("%s rejected a call", before)
					}
					if before == events.Open && b.State() == events.Open && clk.Nanotime() >= b.openUntil.Load() {
						rt.Fatalf("Open rejected after its time was up")
					}
					continue
				}
				if before == events.Open && b.State() == events.Open {
					rt.Fatalf("Open allowed a call before its time")
				}
				if before == events.ForcedOpen && b.State() == events.ForcedOpen {
					rt.Fatalf("ForcedOpen allowed a call")
				}
				held = append(held, p)
			case 3, 4, 5:
				if len(held) == 0 {
					continue
				}
				i := rapid.IntRange(0, len(held)-1).Draw(rt, "which")
				p := held[i]
				held = append(held[:i], held[i+1:]...)
				o := Outcome(rapid.IntRange(0, 2).Draw(rt, "outcome"))
				p.Report(o, 0)
				if o != Ignored {
					reported++
					if o == Failure {
						failed++
					}
				}
			case 6, 7:
				clk.Advance(time.Duration(rapid.IntRange(0, 3000).Draw(rt, "advanceMs")) * time.Millisecond)
			case 8:
				switch rapid.IntRange(0, 4).Draw(rt, "manual") {
				case 0:
					b.ForceOpen("prop")
					if prev.State == events.ForcedOpen && prev.HeldBy == "" && published != events0 {
						rt.Fatalf("ForceOpen of an operator's hold published an event")
					}
				case 1:
					b.Reset()
					if prev.State == events.Closed {
						if published != events0 {
							rt.Fatalf("Reset of a Closed breaker published an event")
						}
						if s := b.Snapshot(); s.WindowRequests != 0 || s.ConsecutiveFailures != 0 {
							rt.Fatalf("Reset of a Closed breaker kept %+v", s)
						}
					}
				case 2:
					b.Release("prop")
				case 3:
					b.Trip("prop")
				case 4:
					b.Disable()
					if prev.State == events.Disabled && published != events0 {
						rt.Fatalf("Disable of a Disabled breaker published an event")
					}
				}
			case 9:
				owner := rapid.SampledFrom([]string{"health", "chaos"}).Draw(rt, "owner")
				switch rapid.IntRange(0, 2).Draw(rt, "hold") {
				case 0:
					_ = b.Snapshot()
				case 1:
					lease := time.Duration(rapid.IntRange(1, 5).Draw(rt, "leaseSec")) * time.Second
					ok := b.Hold(owner, "prop", lease)
					want := prev.State != events.Disabled && (prev.State != events.ForcedOpen || prev.HeldBy == owner)
					if ok != want {
						rt.Fatalf("Hold(%s) = %v on %+v", owner, ok, prev)
					}
					if ok {
						s := b.Snapshot()
						if s.State != events.ForcedOpen || s.HeldBy != owner || !s.HoldUntil.Equal(clk.Now().Add(lease)) {
							rt.Fatalf("after Hold(%s, %v): %+v", owner, lease, s)
						}
						if prev.HeldBy == owner && published != events0 {
							rt.Fatalf("renewing a hold published an event")
						}
					}
				case 2:
					ok := b.Unhold(owner, "prop")
					if want := prev.State == events.ForcedOpen && prev.HeldBy == owner; ok != want {
						rt.Fatalf("Unhold(%s) = %v on %+v", owner, ok, prev)
					}
					if ok && b.State() != events.HalfOpen {
						rt.Fatalf("Unhold left %s", b.State())
					}
				}
			}

			// Never more probes in a round than allowed.
			if b.State() == events.HalfOpen {
				if n := b.probes.Load() & probeMask; n > uint64(cfg.HalfOpenMaxRequests) {
					rt.Fatalf("%d probes admitted, limit %d", n, cfg.HalfOpenMaxRequests)
				}
			}
			// Closed never holds a run of failures at the threshold.
			if b.State() == events.Closed && b.consecFail.Load() >= int64(cfg.FailureThreshold) {
				rt.Fatalf("closed with %d consecutive failures", b.consecFail.Load())
			}
			// The counts add up.
			s := b.Snapshot()
			if s.TotalRequests != reported || s.FailedRequests != failed || s.RejectedRequests != rejected ||
				s.SuccessfulRequests+s.FailedRequests != s.TotalRequests {
				rt.Fatalf("counts %+v; want total %d failed %d rejected %d", s, reported, failed, rejected)
			}
			if s.WindowRequests > s.TotalRequests || s.WindowFailures > s.WindowRequests {
				rt.Fatalf("window %+v exceeds lifetime", s)
			}
			// A snapshot tells the truth without a call to make it so: no
			// expired open time, no lapsed hold, no holder outside a hold.
			now := clk.Now()
			if s.State == events.Open && !s.OpenUntil.After(now) {
				rt.Fatalf("snapshot Open until %v at %v", s.OpenUntil, now)
			}
			if s.HeldBy != "" && (s.State != events.ForcedOpen || !s.HoldUntil.After(now)) {
				rt.Fatalf("snapshot %s held by %q until %v at %v", s.State, s.HeldBy, s.HoldUntil, now)
			}
			if s.HeldBy == "" && !s.HoldUntil.IsZero() {
				rt.Fatalf("snapshot holds until %v for nobody", s.HoldUntil)
			}
			// Every transition counted was published, and only those.
			if n := transitionCount(s); n != published {
				rt.Fatalf("%d transitions counted, %d published", n, published)
			}
			prev = s
		}
	})
}
