package admin

import (
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/bulwark-go/bulwark/events"
)

// Events the hub lost still use up sequence numbers, so clients see a gap.
func TestSeqGapForLostEvents(t *testing.T) {
	bus := events.NewBus()
	cfg := Config{SubscriberBuffer: MaxSubscriberBuffer, Logger: slog.New(slog.DiscardHandler)}
	cfg.checkLimits(&checker{})
	n := newNotifier(bus, cfg)
	rx, err := n.Register(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	capacity := cap(n.sub.C())
	for range capacity + 10 { // the hub is not running yet: 10 are lost
		bus.Publish(events.StateChange{Endpoint: "api"})
	}
	n.start()
	defer n.Close()
	// The loss is noticed, and numbered, when the hub next reads the bus:
	// a client sees a jump of 10, which is all it needs to refetch.
	for i := range capacity {
		if seq := seqOf(t, <-rx.C()); seq != uint64(i+11) {
			t.Fatalf("message %d has seq %d, want %d", i, seq, i+11)
		}
	}
	bus.Publish(events.StateChange{Endpoint: "api"})
	if seq := seqOf(t, <-rx.C()); seq != uint64(capacity+11) {
		t.Fatalf("after the loss: seq %d, want %d", seq, capacity+11)
	}
}

func TestEncodeEvent(t *testing.T) {
	cases := []struct {
		e    events.Event
		want string
	}{
		{emptyEvent{}, `{"type":"empty","seq":3}`},
		{typedEvent{Type: "own", N: 1}, `{"type":"own","n":1,"seq":3}`},
	}
	for _, c := range cases {
		got, err := encodeEvent(3, c.e)
		if err != nil || string(got) != c.want {
			t.Errorf("%T: %s %v, want %s", c.e, got, err, c.want)
		}
	}
	if _, err := encodeEvent(1, listEvent{}); err == nil {
		t.Error("encoded a non-object event")
	}
	if _, err := encodeEvent(1, events.StateChange{NewState: 99}); err == nil {
		t.Error("encoded an invalid state")
	}
}

type emptyEvent struct{}

func (emptyEvent) EventType() string { return "empty" }

type typedEvent struct {
	Type string `json:"type"`
	N    int    `json:"n"`
}

func (typedEvent) EventType() string { return "typed" }

type listEvent []int

func (listEvent) EventType() string { return "list" }

func seqOf(t *testing.T, msg []byte) uint64 {
	t.Helper()
	var m struct{ Seq uint64 }
	if err := json.Unmarshal(msg, &m); err != nil {
		t.Fatal(err)
	}
	return m.Seq
}
