package core

import (
	"github.com/bulwark-go/bulwark/events"
	"strings"
	"testing"
)

// Restore's error names the count that is wrong.
func TestRestoreErrorNamesTheBadCount(t *testing.T) {
	b, _, _ := newTestBreaker(t, BreakerConfig{})
	err := ReplicationOf(b).Restore(Snapshot{State: events.Closed, ConsecutiveFailures: -1})
	if err == nil {
		t.Fatal("negative ConsecutiveFailures accepted")
	}
	if !strings.Contains(err.Error(), "ConsecutiveFailures") {
		t.Fatalf("error does not name the bad field: %v", err)
	}
}

// Restore refuses more slow calls than calls, as the state file does.
func TestRestoreRefusesMoreSlowThanTotal(t *testing.T) {
	b, _, _ := newTestBreaker(t, BreakerConfig{})
	if err := ReplicationOf(b).Restore(Snapshot{State: events.Closed, TotalRequests: 1, SuccessfulRequests: 1, SlowRequests: 5}); err == nil {
		t.Fatalf("Restore accepted SlowRequests > TotalRequests: snapshot %+v", b.Snapshot())
	}
}
