package admin

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bulwark-go/bulwark/events"
)

// Events the hub lost still use up sequence numbers, so clients see a gap.
func TestSeqGapForLostEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus := events.NewBus()
		cfg := Config{SubscriberBuffer: 4096, SnapshotInterval: time.Hour, Logger: slog.New(slog.DiscardHandler)}
		cfg.MaxSubscribers, cfg.EventHistory = 1, 1
		n := newHub(bus, cfg, func(uint64) []byte { return nil })
		rx, err := n.register(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		capacity := cap(n.sub.C())
		for range capacity + 10 { // the hub is not running yet: 10 are lost
			bus.Publish(events.StateChange{Endpoint: "api"})
		}
		n.start()
		defer n.close(context.Background())
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
	})
}

func TestEncodeEvent(t *testing.T) {
	at := time.Date(2025, 10, 8, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		e    events.Event
		want string
	}{
		{emptyEvent{}, `{"type":"empty","seq":3}`},
		{typedEvent{Type: "own", N: 1}, `{"type":"own","n":1,"seq":3}`},
		// An event whose own "type" is left empty is named by its EventType.
		{typedEvent{N: 2}, `{"type":"typed","n":2,"seq":3}`},
		{nullTypeEvent{N: 4}, `{"n":4,"type":"null-typed","seq":3}`},
		{nested{Inner: typedEvent{}}, `{"inner":{"type":"","n":0},"type":"nested","seq":3}`},
		{events.ConfigChange{Type: events.TypeConfigChange, Endpoint: "GET /x", Source: "runtime", Timestamp: at},
			`{"type":"config_change","endpoint":"GET /x","source":"runtime","timestamp":"2025-10-08T12:00:00Z","seq":3}`},
		{events.ConfigChange{Endpoint: "GET /x", Source: "file", Timestamp: at},
			`{"type":"config_change","endpoint":"GET /x","source":"file","timestamp":"2025-10-08T12:00:00Z","seq":3}`},
	}
	for _, c := range cases {
		got, err := encodeEvent(3, c.e)
		if err != nil || string(got) != c.want {
			t.Errorf("%T: %s %v, want %s", c.e, got, err, c.want)
		}
		if err == nil && !json.Valid(got) {
			t.Errorf("%T: not JSON: %s", c.e, got)
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

type nullTypeEvent struct {
	N    int     `json:"n"`
	Type *string `json:"type"`
}

func (nullTypeEvent) EventType() string { return "null-typed" }

type nested struct {
	Inner typedEvent `json:"inner"`
}

func (nested) EventType() string { return "nested" }

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

// FuzzEncodeEvent: whatever an event's JSON object holds, its message is
// one JSON object with a non-empty "type" and the given "seq".
func FuzzEncodeEvent(f *testing.F) {
	for _, s := range []string{`{}`, `{"type":""}`, `{"type":null,"a":1}`, `{"a":{"type":""}}`, `{"type":"x"}`, `{ "type" : "" , "b" : [1] }`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, obj string) {
		var probe map[string]json.RawMessage
		if json.Unmarshal([]byte(obj), &probe) != nil || probe == nil || topLevelKeys(obj) != len(probe) {
			return // not an object, or one with a key twice: json.Marshal makes neither
		}
		msg, err := encodeEvent(7, rawEvent(obj))
		if err != nil {
			t.Fatalf("%s: %v", obj, err)
		}
		var m struct {
			Type any    `json:"type"`
			Seq  uint64 `json:"seq"`
		}
		if err := json.Unmarshal(msg, &m); err != nil || m.Seq != 7 {
			t.Fatalf("%s -> %s: %v", obj, msg, err)
		}
		if s, ok := m.Type.(string); ok && s == "" || m.Type == nil {
			t.Fatalf("%s -> %s: no type", obj, msg)
		}
	})
}

func topLevelKeys(obj string) int {
	dec := json.NewDecoder(strings.NewReader(obj))
	if _, err := dec.Token(); err != nil {
		return -1
	}
	n := 0
	for dec.More() {
		if _, err := dec.Token(); err != nil {
			return -1
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return -1
		}
		n++
	}
	return n
}

// rawEvent is an event whose JSON form is the string itself.
type rawEvent string

func (rawEvent) EventType() string { return "raw" }

func (r rawEvent) MarshalJSON() ([]byte, error) { return []byte(r), nil }
