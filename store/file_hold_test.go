package store

import (
	"context"
	"github.com/bulwark-go/bulwark/events"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bulwark-go/bulwark/core"
)

// A component's hold survives a crash for the rest of its lease only, and
// an operator's until it is released; a store that closes ends the holds of
// its own process.
func TestFileStoreRestoresHoldsForTheRestOfTheirLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "breakers.state")
		clk := core.NewFakeClock(fileT0)
		p := startFileStore(t, path, clk, FileConfig{})
		if !p.breaker(t, "db").Hold("health ping", "down", time.Minute) {
			t.Fatal("Hold refused")
		}
		p.breaker(t, "ops").ForceOpen("maintenance")
		synctest.Wait() // saved
		crash, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if r := readFileRecords(t, path)["db"]; r.State != events.ForcedOpen || r.HeldBy != "health ping" ||
			!r.HoldUntil.Equal(fileT0.Add(time.Minute)) {
			t.Fatalf("saved hold %+v", r)
		}

		// A clean stop ends the hold its own component took: the owner
		// stops with the process. The operator's stays.
		p.stop(t)
		recs := readFileRecords(t, path)
		if r := recs["db"]; r.State != events.HalfOpen || r.HeldBy != "" || r.Reason != "released: health ping stopped with the process" {
			t.Errorf("after Close the file holds %+v, want a released hold", r)
		}
		if r := recs["ops"]; r.State != events.ForcedOpen || r.HeldBy != "" {
			t.Errorf("after Close the operator's hold is %+v", r)
		}

		// After a crash (the file as it was), 20s later: held by the same
		// owner for the 40s left, not by this process.
		restart := func(d time.Duration) fileProcess {
			t.Helper()
			if err := os.WriteFile(path, crash, 0o600); err != nil {
				t.Fatal(err)
			}
			clk.Advance(d)
			return startFileStore(t, path, clk, FileConfig{})
		}
		p = restart(20 * time.Second)
		b := p.breaker(t, "db")
		s := b.Snapshot()
		if s.State != events.ForcedOpen || s.HeldBy != "health ping" || !s.HoldUntil.Equal(fileT0.Add(time.Minute)) {
			t.Fatalf("restored %s held by %q until %v, want ForcedOpen held by health ping until %v",
				s.State, s.HeldBy, s.HoldUntil, fileT0.Add(time.Minute))
		}
		if core.ReplicationOf(b).HeldHere() {
			t.Error("a restored hold counts as this process's")
		}
		if s := p.breaker(t, "ops").Snapshot(); s.State != events.ForcedOpen || s.HeldBy != "" {
			t.Errorf("the operator's hold came back as %s held by %q", s.State, s.HeldBy)
		}
		// Closed again before its owner renews it, it keeps its lease.
		p.stop(t)
		if r := readFileRecords(t, path)["db"]; r.State != events.ForcedOpen || r.HeldBy != "health ping" {
			t.Errorf("a hold restored here was saved as %+v", r)
		}

		// Unrenewed, it lapses when its lease ends.
		p = restart(0)
		b = p.breaker(t, "db")
		clk.Advance(40*time.Second - 1)
		if b.State() != events.ForcedOpen {
			t.Fatalf("%s before the lease ended", b.State())
		}
		clk.Advance(1)
		if _, err := b.Allow(); err != nil || b.State() != events.HalfOpen {
			t.Fatalf("after the lease: %v in %s, want a probe in HalfOpen", err, b.State())
		}
		if st := p.breaker(t, "ops").State(); st != events.ForcedOpen {
			t.Errorf("the operator's hold lapsed: %s", st)
		}
		p.stop(t)

		// A crash longer than the lease: back HalfOpen.
		p = restart(time.Hour)
		if s := p.breaker(t, "db").Snapshot(); s.State != events.HalfOpen || !strings.Contains(s.Reason, "lapsed while stopped") {
			t.Fatalf("restored after the lease: %s (%q), want HalfOpen", s.State, s.Reason)
		}
		p.stop(t)
	})
}

// AttachManager creates the endpoint of every saved breaker, so that status
// and metrics show them before any call; past the Manager's bound the
// records are reported and kept.
func TestFileStoreAttachManagerCreatesSavedEndpoints(t *testing.T) {
	path := filepath.Join(t.TempDir(), "breakers.state")
	clk := core.NewFakeClock(fileT0)
	p := startFileStore(t, path, clk, FileConfig{})
	p.breaker(t, "a").Trip("down")
	p.breaker(t, "b").ForceOpen("maintenance")
	p.breaker(t, "c").Disable()
	p.stop(t)

	m, err := core.NewManager(core.ManagerConfig{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	fs, err := NewFileStore(FileConfig{Path: path, Clock: clk, Logger: fileQuiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := fs.AttachManager(m); err != nil {
		t.Fatal(err)
	}
	want := map[string]events.State{"a": events.Open, "b": events.ForcedOpen, "c": events.Disabled}
	for name, st := range want {
		e, ok := m.Lookup(name)
		if !ok {
			t.Errorf("%s: no endpoint after AttachManager", name)
			continue
		}
		if got := e.Breaker().State(); got != st {
			t.Errorf("%s: %s, want %s", name, got, st)
		}
	}
	if err := fs.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	// A Manager that tracks two endpoints: the third record is reported
	// and kept for a later run.
	logs := &logRecorder{}
	m, err = core.NewManager(core.ManagerConfig{Clock: clk, MaxEndpoints: 2})
	if err != nil {
		t.Fatal(err)
	}
	fs, err = NewFileStore(FileConfig{Path: path, Clock: clk, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	if err := fs.AttachManager(m); err != nil {
		t.Fatalf("records past the bound are fatal: %v", err)
	}
	if n := len(m.Endpoints()); n != 2 {
		t.Errorf("%d endpoints, want 2", n)
	}
	if logs.count(slog.LevelWarn, "saved breakers not restored") != 1 || !strings.Contains(logs.dump(), "[c]") {
		t.Errorf("the record past the bound was not reported:\n%s", logs.dump())
	}
	if err := fs.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r, ok := readFileRecords(t, path)["c"]; !ok || r.State != events.Disabled {
		t.Errorf("the record past the bound was not kept: %+v", r)
	}
}
