package core

import (
	"errors"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// TestBreakerStateMachineProperties drives a breaker with random calls,
// outcomes, clock steps and manual actions, and checks its invariants after
// every step.
func TestBreakerStateMachineProperties(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		cfg := Config{
			FailureThreshold:    rapid.IntRange(1, 6).Draw(rt, "failureThreshold"),
			HalfOpenMaxRequests: rapid.IntRange(1, 4).Draw(rt, "halfOpenMax"),
			Timeout:             time.Duration(rapid.IntRange(1, 5).Draw(rt, "timeoutSec")) * time.Second,
			MinRequestsForRate:  rapid.IntRange(1, 10).Draw(rt, "minRequests"),
			ProbeTimeout:        10 * time.Second,
		}
		cfg.SuccessThreshold = rapid.IntRange(1, cfg.HalfOpenMaxRequests).Draw(rt, "successThreshold")
		clk := NewFakeClock(t0)
		b, err := NewBreaker("prop", cfg, WithClock(clk))
		if err != nil {
			rt.Fatal(err)
		}
		var held []Permit // permits not yet reported
		var allowed, rejected, reported, failed int64

		steps := rapid.IntRange(1, 200).Draw(rt, "steps")
		for range steps {
			before := b.State()
			switch rapid.IntRange(0, 9).Draw(rt, "op") {
			case 0, 1, 2:
				p, err := b.Allow()
				if err != nil {
					rejected++
					var re *RejectedError
					if !errors.As(err, &re) {
						rt.Fatalf("rejection is not a *RejectedError: %v", err)
					}
					if before == Closed || before == Disabled {
						rt.Fatalf("%s rejected a call", before)
					}
					if before == Open && b.State() == Open && clk.Nanotime() >= b.openUntil.Load() {
						rt.Fatalf("Open rejected after its time was up")
					}
					continue
				}
				allowed++
				if before == Open && b.State() == Open {
					rt.Fatalf("Open allowed a call before its time")
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
				case 1:
					b.Reset()
				case 2:
					b.Release("prop")
				case 3:
					b.Trip("prop")
				case 4:
					b.Disable()
				}
			case 9:
				_ = b.Snapshot()
			}

			// Never more probes in a round than allowed.
			if b.State() == HalfOpen {
				if n := b.probes.Load() & probeMask; n > uint64(cfg.HalfOpenMaxRequests) {
					rt.Fatalf("%d probes admitted, limit %d", n, cfg.HalfOpenMaxRequests)
				}
			}
			// Closed never holds a run of failures at the threshold.
			if b.State() == Closed && b.consecFail.Load() >= int64(cfg.FailureThreshold) {
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
		}
		_ = allowed
	})
}
