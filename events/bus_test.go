package events

import (
	"encoding/json"
	"sync"
	"testing"
	"time"
)

func TestStateChangeJSONShape(t *testing.T) {
	e := StateChange{
		Endpoint: "api-service", OldState: Closed, NewState: Open,
		Timestamp: time.Date(2025, 10, 8, 12, 0, 0, 0, time.UTC), Reason: "Failure threshold exceeded",
		Remote: true,
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"endpoint":"api-service","old_state":"Closed","new_state":"Open","timestamp":"2025-10-08T12:00:00Z","reason":"Failure threshold exceeded"}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	var back StateChange
	if err := json.Unmarshal(b, &back); err != nil || back.NewState != Open || back.OldState != Closed {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"new_state":"Sideways"}`), &back); err == nil {
		t.Fatal("accepted an unknown state")
	}
}

func TestStateNames(t *testing.T) {
	for s, name := range []string{"Closed", "Open", "HalfOpen", "ForcedOpen", "Disabled"} {
		if State(s).String() != name {
			t.Errorf("%d: %s", s, State(s))
		}
		if p, err := ParseState(name); err != nil || p != State(s) {
			t.Errorf("parse %s: %v %v", name, p, err)
		}
	}
	if _, err := State(9).MarshalText(); err == nil {
		t.Fatal("marshalled an invalid state")
	}
}

// subscribers counts the bus's live subscriptions.
func subscribers(b *Bus) int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.subs)
}

func TestBusDropsForAFullSubscriberOnly(t *testing.T) {
	var bus Bus
	slow := bus.Subscribe(2)
	fast := bus.Subscribe(10)
	for range 5 {
		bus.Publish(StateChange{Endpoint: "x"})
	}
	if slow.Dropped() != 3 || fast.Dropped() != 0 || len(fast.C()) != 5 || len(slow.C()) != 2 {
		t.Fatalf("slow dropped %d, fast dropped %d", slow.Dropped(), fast.Dropped())
	}
	slow.Close()
	slow.Close()
	if subscribers(&bus) != 1 {
		t.Fatalf("subscribers %d", subscribers(&bus))
	}
	n := 0
	for range slow.C() { // buffered events survive Close, then the channel ends
		n++
	}
	if n != 2 {
		t.Fatalf("drained %d", n)
	}
	fast.Close()
}

func TestBusConcurrentPublishAndClose(t *testing.T) {
	bus := NewBus()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				bus.Publish(StateChange{})
			}
		}()
	}
	for range 50 {
		s := bus.Subscribe(1)
		s.Close()
	}
	wg.Wait()
	if subscribers(bus) != 0 {
		t.Fatal("leftover subscribers")
	}
	if cap(bus.Subscribe(0).ch) != defaultBuffer || cap(bus.Subscribe(maxBuffer*2).ch) != maxBuffer {
		t.Fatal("buffer bounds")
	}
}
