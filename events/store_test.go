package events

import (
	"encoding/json"
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
