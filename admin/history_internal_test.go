package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
)

type testFault struct {
	Type      string    `json:"type"`
	ID        string    `json:"id"`
	Endpoint  string    `json:"endpoint"`
	Timestamp time.Time `json:"timestamp"`
}

func (f testFault) EventType() string { return f.Type }

// The fault spans kept are bounded: past the bound the oldest ended one
// goes first, then the oldest.
func TestFaultSpansBounded(t *testing.T) {
	clock := core.NewFakeClock(time.Date(2025, 10, 8, 12, 0, 0, 0, time.UTC))
	m, err := core.NewManager(core.ManagerConfig{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	h := newHistory(m, 2*time.Second)
	at := clock.Now()
	h.observe(testFault{Type: typeFaultStart, ID: "ended", Endpoint: "x", Timestamp: at})
	h.observe(testFault{Type: typeFaultEnd, ID: "ended", Endpoint: "x", Timestamp: at})
	for i := range maxFaultSpans + 10 {
		h.observe(testFault{Type: typeFaultStart, ID: fmt.Sprint("f", i), Endpoint: "x", Timestamp: at})
	}
	h.observe(testFault{Type: typeFaultStart, Endpoint: "x", Timestamp: at}) // no id: ignored
	h.observe(events.StateChange{Endpoint: "x"})                             // not a fault: ignored
	if len(h.faults) != maxFaultSpans {
		t.Fatalf("%d spans kept, want %d", len(h.faults), maxFaultSpans)
	}
	if h.faults[0].id != "f10" || h.faults[len(h.faults)-1].id != fmt.Sprint("f", maxFaultSpans+9) {
		t.Fatalf("kept %s to %s", h.faults[0].id, h.faults[len(h.faults)-1].id)
	}
	// A second start of a running experiment is the same span.
	h.observe(testFault{Type: typeFaultStart, ID: "f20", Endpoint: "x", Timestamp: at.Add(time.Second)})
	if len(h.faults) != maxFaultSpans || h.faults[10].start != at {
		t.Fatal("a repeated start made a second span")
	}
}

// The cluster view is bounded and never shares the publisher's maps.
func TestClusterBounded(t *testing.T) {
	var c cluster
	if c.status() != nil {
		t.Fatal("a view before any store status")
	}
	shares := make(map[string]float64)
	for i := range maxClusterShares + 5 {
		shares[fmt.Sprintf("GET /e%05d", i)] = 0.5
	}
	in := make([]events.Instance, maxClusterInstances+3)
	for i := range in {
		in[i] = events.Instance{ID: fmt.Sprintf("i%04d", len(in)-i), Shares: shares}
	}
	c.observe(&events.StoreStatus{Status: "members", Instances: in})
	st := c.status()
	if len(st.Instances) != maxClusterInstances || st.Instances[0].ID != "i0001" {
		t.Fatalf("%d instances from %s", len(st.Instances), st.Instances[0].ID)
	}
	if n := len(st.Instances[0].Shares); n != maxClusterShares {
		t.Fatalf("%d shares", n)
	}
	shares["GET /e00000"] = 1
	if st.Instances[0].Shares["GET /e00000"] != 0.5 {
		t.Fatal("the view shares the publisher's map")
	}
	c.observe((*events.StoreStatus)(nil))
	c.observe(events.StoreStatus{Status: events.StoreDegraded})
	if c.status() != st {
		t.Fatal("a status without instances replaced the view")
	}
}

// The feed's snapshot carries every endpoint's newest sample, for the page
// to append; GET …/status does not.
func TestSnapshotCarriesTheNewestSample(t *testing.T) {
	clock := core.NewFakeClock(time.Date(2025, 10, 8, 12, 0, 0, 0, time.UTC))
	m, err := core.NewManager(core.ManagerConfig{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	e, _ := m.Endpoint("GET /x")
	h, err := New(Config{Manager: m, SnapshotInterval: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	e.Breaker().RecordFailure()
	clock.Advance(time.Hour)
	h.history.sample()
	want := `"sample":{"GET /x":{"t":1759928400000,"rate":0,"failure_pct":100,"p99_ms":0,"state":"Closed","injected":0}}`
	if msg := string(h.snapshotMessage(0)); !strings.Contains(msg, want) {
		t.Fatalf("snapshot %s\nlacks %s", msg, want)
	}
	if b, _ := json.Marshal(h.status(0, false)); strings.Contains(string(b), `"sample"`) {
		t.Fatalf("status carries the sample: %s", b)
	}
}
