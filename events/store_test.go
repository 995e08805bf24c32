package events

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestStoreStatusJSONShape(t *testing.T) {
	e := StoreStatus{
		Type: TypeStoreStatus, Store: "redis", Instance: "a1", Status: StoreDegraded,
		Error: "connection refused", Timestamp: time.Date(2025, 10, 8, 12, 0, 0, 0, time.UTC),
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"store_status","store":"redis","instance":"a1","status":"degraded","error":"connection refused","timestamp":"2025-10-08T12:00:00Z"}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	if e.EventType() != TypeStoreStatus {
		t.Fatal(e.EventType())
	}
}

func TestStoreStatusInstancesJSONShape(t *testing.T) {
	at := time.Date(2025, 10, 8, 12, 0, 0, 0, time.UTC)
	e := StoreStatus{
		Type: TypeStoreStatus, Store: "redis", Instance: "web-1", Status: "members", Timestamp: at,
		Instances: []Instance{
			{ID: "web-1", LastSeen: at, Healthy: true, Self: true, Shares: map[string]float64{"GET /x": 0.75}},
			{ID: "web-2", LastSeen: at.Add(-20 * time.Second)},
		},
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"store_status","store":"redis","instance":"web-1","status":"members","timestamp":"2025-10-08T12:00:00Z",` +
		`"instances":[{"id":"web-1","last_seen":"2025-10-08T12:00:00Z","healthy":true,"self":true,"shares":{"GET /x":0.75}},` +
		`{"id":"web-2","last_seen":"2025-10-08T11:59:40Z","healthy":false}]}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	var back StoreStatus
	if err := json.Unmarshal(b, &back); err != nil || len(back.Instances) != 2 || back.Instances[0].Shares["GET /x"] != 0.75 || !back.Instances[0].Self {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	// Without instances the form is as before.
	e.Instances = nil
	if b, _ := json.Marshal(e); strings.Contains(string(b), "instances") {
		t.Fatalf("empty instances encoded: %s", b)
	}
}
