package events

import (
	"encoding/json"
	"testing"
	"time"
)

func TestClusterStateChangeJSONShape(t *testing.T) {
	e := ClusterStateChange{
		Type: TypeClusterStateChange, Endpoint: "api-service", OldState: Closed, NewState: Open,
		Timestamp: time.Date(2025, 10, 8, 12, 0, 0, 0, time.UTC), Reason: "Failure threshold exceeded",
		Version: 7, Instance: "a1b2c3",
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"cluster_state_change","endpoint":"api-service","old_state":"Closed","new_state":"Open","timestamp":"2025-10-08T12:00:00Z","reason":"Failure threshold exceeded","version":7,"instance":"a1b2c3"}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	if e.EventType() != TypeClusterStateChange {
		t.Fatal(e.EventType())
	}
}
