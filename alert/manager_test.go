package alert

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
)

func TestManagerFireResolve(t *testing.T) {
	clock := core.NewFakeClock(time.Date(2025, 10, 8, 12, 0, 0, 0, time.UTC))
	bus := events.NewBus()
	sub := bus.Subscribe(10)
	defer sub.Close()
	h1, h2 := &collector{}, &collector{}
	m, err := NewManager(ManagerConfig{History: 3, Clock: clock, Handlers: []Handler{h1}})
	if err != nil {
		t.Fatal(err)
	}
	m.bus = bus      // publish without following: the events this test reads are the manager's own
	m.AddHandler(h2) // added, not replacing h1
	m.AddHandler(nil)
	m.AddHandler((*collector)(nil))

	meta := map[string]string{"k": "v"}
	a := m.Fire(Alert{Severity: Warning, Message: "disk", Type: Type{Message: "disk", Metadata: meta}})
	meta["k"] = "changed" // the manager kept its own copy
	a.Type.Metadata["k"] = "changed too"
	if !uuidV4.MatchString(a.ID) || !a.Timestamp.Equal(clock.Now()) || a.Type.Kind != "custom" || a.Resolved {
		t.Fatalf("fired alert: %+v", a)
	}
	for _, h := range []*collector{h1, h2} {
		if got := h.all(); len(got) != 1 || got[0].ID != a.ID || got[0].Type.Metadata["k"] != "v" {
			t.Fatalf("handler got %+v", got)
		}
	}
	if e := <-sub.C(); e.(Alert).ID != a.ID {
		t.Fatalf("bus got %+v", e)
	}
	if act := m.Active(); len(act) != 1 || act[0].ID != a.ID || act[0].Type.Metadata["k"] != "v" {
		t.Fatalf("Active() = %+v", act)
	}
	// Firing the same ID again is idempotent.
	m.Fire(a)
	if h1.len() != 1 || len(sub.C()) != 0 {
		t.Fatalf("re-firing an active ID notified again")
	}

	clock.Advance(time.Minute)
	r, ok := m.Resolve(a.ID)
	if !ok || r.ID != a.ID || !r.Resolved || !r.ResolvedAt.Equal(clock.Now()) {
		t.Fatalf("Resolve = %+v, %v", r, ok)
	}
	if got := h1.all(); len(got) != 2 || !got[1].Resolved || got[1].ID != a.ID {
		t.Fatalf("handler got %+v", got)
	}
	if e := <-sub.C(); !e.(Alert).Resolved {
		t.Fatalf("bus got %+v", e)
	}
	if _, ok := m.Resolve(a.ID); ok {
		t.Fatal("resolving twice succeeded")
	}
	if len(m.Active()) != 0 {
		t.Fatal("resolved alert still active")
	}
	if got, ok := recent(m, a.ID); !ok || !got.Resolved {
		t.Fatalf("Recent after resolve = %+v, %v", got, ok)
	}

	// Recent is a bounded ring, newest first.
	var ids []string
	for i := range 5 {
		ids = append(ids, m.Fire(Alert{Message: string(rune('a' + i))}).ID)
	}
	rec := m.Recent()
	if len(rec) != 3 || rec[0].ID != ids[4] || rec[2].ID != ids[2] {
		t.Fatalf("Recent() = %v", rec)
	}
	if _, ok := recent(m, a.ID); ok {
		t.Fatal("an alert that left the ring and is resolved is still found")
	}
	if err := m.Close(t.Context()); err != nil {
		t.Fatalf("Close without a bus: %v", err)
	}
}

func TestManagerMaxActive(t *testing.T) {
	var logs bytes.Buffer
	m, _ := NewManager(ManagerConfig{MaxActive: 2, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	a := m.Fire(Alert{Message: "1"})
	m.Fire(Alert{Message: "2"})
	m.Fire(Alert{Message: "3"})
	if act := m.Active(); len(act) != 2 || act[0].Message != "2" {
		t.Fatalf("Active() = %+v", act)
	}
	if !strings.Contains(logs.String(), "too many active alerts") || !strings.Contains(logs.String(), a.ID) {
		t.Fatalf("eviction not logged: %q", logs.String())
	}
	if _, ok := m.Resolve(a.ID); ok {
		t.Fatal("resolved an evicted alert")
	}
}

// Handlers run outside the manager's locks, one at a time and in order:
// one that calls back into the manager neither deadlocks nor sees an
// alert resolved before it fired.
func TestManagerHandlerCallsBack(t *testing.T) {
	m, _ := NewManager(ManagerConfig{})
	var seen []string
	m.AddHandler(HandlerFunc(func(a Alert) {
		seen = append(seen, a.Message+"/"+map[bool]string{false: "fired", true: "resolved"}[a.Resolved])
		m.Active()
		if a.Message == "first" && !a.Resolved {
			m.Resolve(a.ID)                  // handed on after this call returns
			m.Fire(Alert{Message: "second"}) // and this after that
		}
	}))
	m.Fire(Alert{Message: "first"})
	if got := strings.Join(seen, " "); got != "first/fired first/resolved second/fired" {
		t.Fatalf("handler saw %s", got)
	}
}

// A handler that panics fails the call that delivered to it, not the
// manager: the next alert is delivered.
func TestManagerHandlerPanics(t *testing.T) {
	m, _ := NewManager(ManagerConfig{})
	got := &collector{}
	m.AddHandler(HandlerFunc(func(a Alert) {
		if a.Message == "boom" {
			panic("handler failed")
		}
	}))
	m.AddHandler(got)
	func() {
		defer func() { _ = recover() }()
		m.Fire(Alert{Message: "boom"})
	}()
	m.Fire(Alert{Message: "next"})
	if all := got.all(); len(all) == 0 || all[len(all)-1].Message != "next" {
		t.Fatalf("after a panic: %+v", all)
	}
}

func TestManagerConcurrent(t *testing.T) {
	m, _ := NewManager(ManagerConfig{History: 10})
	var mu sync.Mutex
	state := make(map[string]bool) // id -> resolved, as handlers saw it
	calls := 0
	m.AddHandler(HandlerFunc(func(a Alert) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if !a.Resolved && state[a.ID] {
			t.Errorf("alert %s fired after it resolved", a.ID)
		}
		state[a.ID] = a.Resolved
	}))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				a := m.Fire(Alert{Severity: Info})
				m.Recent()
				m.Active()
				if _, ok := m.Resolve(a.ID); !ok {
					t.Error("resolve failed")
				}
			}
		})
	}
	wg.Wait()
	if len(m.Active()) != 0 {
		t.Fatal("alerts left active")
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 8*50*2 {
		t.Fatalf("%d handler calls, want %d", calls, 8*50*2)
	}
	for id, resolved := range state {
		if !resolved {
			t.Fatalf("alert %s never seen resolved", id)
		}
	}
}

func TestManagerCloseIdempotent(t *testing.T) {
	m, err := NewManager(ManagerConfig{Bus: events.NewBus()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// Fired by hand after Close: still works.
	if a := m.Fire(Alert{Message: "late"}); len(m.Active()) != 1 || m.Active()[0].ID != a.ID {
		t.Fatal("Fire after Close")
	}
}

// recent finds the alert id among m's recent alerts.
func recent(m *Manager, id string) (Alert, bool) {
	for _, a := range m.Recent() {
		if a.ID == id {
			return a, true
		}
	}
	return Alert{}, false
}
