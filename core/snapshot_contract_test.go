package core

import (
	"github.com/bulwark-go/bulwark/events"
	"testing"
	"time"
)

// ConsecutiveSuccesses is zero outside HalfOpen, as Snapshot documents.
func TestConsecutiveSuccessesIsZeroOnceClosed(t *testing.T) {
	b, clk, _ := newTestBreaker(t, BreakerConfig{FailureThreshold: 1, SuccessThreshold: 2, Timeout: time.Second})
	fail(t, b, 1)
	clk.Advance(time.Second)
	succeed(t, b, 2)
	if b.State() != events.Closed {
		t.Fatalf("state %s, want Closed", b.State())
	}
	if s := b.Snapshot(); s.ConsecutiveSuccesses != 0 {
		t.Fatalf("Closed breaker reports ConsecutiveSuccesses = %d, godoc says zero outside HalfOpen", s.ConsecutiveSuccesses)
	}
}
