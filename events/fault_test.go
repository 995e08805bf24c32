package events

import (
	"encoding/json"
	"testing"
	"time"
)

func TestFaultChangeJSONShape(t *testing.T) {
	ts := time.Date(2025, 10, 8, 12, 0, 0, 0, time.UTC)
	start := FaultChange{
		Type: TypeFaultStart, ID: "9f86d081884c7d65", Endpoint: "GET /users/{id}", Percent: 50,
		LatencyMS: 200, LatencyMaxMS: 400, Status: 500,
		Ends: ts.Add(10 * time.Minute), Reason: "game day", Timestamp: ts,
	}
	b, err := json.Marshal(start)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"fault_start","id":"9f86d081884c7d65","endpoint":"GET /users/{id}","percent":50,"latency_ms":200,"latency_max_ms":400,"status":500,"ends":"2025-10-08T12:10:00Z","reason":"game day","timestamp":"2025-10-08T12:00:00Z"}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	end := FaultChange{
		Type: TypeFaultEnd, ID: "a1", Endpoint: "upstream", Percent: 100, Abort: true,
		Ends: ts, Reason: "expired", Origin: "web-2", Injected: 34, Timestamp: ts,
	}
	b, err = json.Marshal(end)
	if err != nil {
		t.Fatal(err)
	}
	want = `{"type":"fault_end","id":"a1","endpoint":"upstream","percent":100,"abort":true,"ends":"2025-10-08T12:00:00Z","reason":"expired","origin":"web-2","injected":34,"timestamp":"2025-10-08T12:00:00Z"}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	if start.EventType() != TypeFaultStart || end.EventType() != TypeFaultEnd {
		t.Fatalf("event types %q, %q", start.EventType(), end.EventType())
	}
	var back FaultChange
	if err := json.Unmarshal(b, &back); err != nil || back != end {
		t.Fatalf("round trip: %+v %v", back, err)
	}
}
