package core

import (
	"slices"
	"testing"

	"github.com/bulwark-go/bulwark/events"
)

// A listener that panics must not strand the events queued during its
// delivery (here by a re-entrant transition; equally by another
// goroutine's): the bus, stores and alerts must still learn the state.
func TestListenerPanicDoesNotStrandQueuedEvents(t *testing.T) {
	b, _, sub := newTestBreaker(t, BreakerConfig{})
	first := true
	b.OnStateChange(func(e events.StateChange) {
		if first {
			first = false
			b.ForceOpen("queued during delivery")
			panic("listener bug")
		}
	})
	func() {
		defer func() { _ = recover() }()
		b.Trip("start")
	}()
	if b.State() != events.ForcedOpen {
		t.Fatalf("state %s", b.State())
	}
	if got := transitions(sub); !slices.Contains(got, "Open>ForcedOpen") {
		t.Fatalf("breaker is ForcedOpen but the bus saw only %v: the Open>ForcedOpen event is stranded in pending", got)
	}
}
