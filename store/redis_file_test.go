package store

import (
	"context"
	"github.com/bulwark-go/bulwark/events"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/internal/redistest"
	"github.com/bulwark-go/bulwark/internal/wait"
)

// withFile attaches a FileStore on path to the Manager, closing it at the
// end of the test.
func withFile(t *testing.T, path string) (func(*core.Manager), func()) {
	var fs *FileStore
	closeFile := func() {
		if fs != nil {
			if err := fs.Close(context.Background()); err != nil {
				t.Errorf("close file store: %v", err)
			}
			fs = nil
		}
	}
	t.Cleanup(closeFile)
	return func(m *core.Manager) {
		var err error
		if fs, err = NewFileStore(FileConfig{Path: path}); err != nil {
			t.Fatal(err)
		}
		if err := fs.AttachManager(m); err != nil {
			t.Fatal(err)
		}
	}, closeFile
}

// savedState reads the state file as it is now (it is replaced
// atomically, so reading beside the writer is safe).
func savedState(path, endpoint string) (events.State, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	recs, _, err := decodeFile(data)
	if err != nil {
		return 0, false
	}
	for _, r := range recs {
		if r.Endpoint == endpoint {
			return r.State, true
		}
	}
	return 0, false
}

func TestRedisDownFileKeepsPersisting(t *testing.T) {
	srv := redistest.Start(t)
	path := filepath.Join(t.TempDir(), "breakers.state")
	attachFile, _ := withFile(t, path)
	a := newInstanceWith(t, srv, "a", core.BreakerConfig{}, RedisConfig{OpTimeout: 250 * time.Millisecond}, attachFile)
	b := newInstance(t, srv, "b", core.BreakerConfig{}, RedisConfig{})
	a.loaded(t, "api")
	b.loaded(t, "api")

	srv.Kill()
	wait.For(t, testWait, "a degraded", func() bool { return !a.s.healthy.Load() })
	a.breaker(t, "api").Trip("while Redis is down")
	wait.For(t, testWait, "the file to hold the trip", func() bool {
		st, ok := savedState(path, "api")
		return ok && st == events.Open
	})

	srv.Restart()
	bb := b.breaker(t, "api")
	wait.For(t, testWait, "b to adopt the trip after the restart", func() bool { return bb.State() == events.Open })
}

func TestRedisRestoredStateIsReconciledNotProposed(t *testing.T) {
	const (
		fileFirst = iota
		redisFirst
		afterLoad // the file store attached once the Redis store has loaded the shared state
	)
	for _, c := range []struct {
		name  string
		order int
		clock core.Clock // a's after the restart
	}{
		{"file store attached first", fileFirst, nil},
		{"Redis store attached first", redisFirst, nil},
		{"file store attached after the first sync", afterLoad, nil},
		// An hour later by a's clock, long past the open time: the file's
		// Open comes back HalfOpen, still dated by the saved Open, so the
		// Reset made after it is newer.
		{"open time ran out while stopped", fileFirst, skewedClock{time.Hour}},
	} {
		order := c.order
		t.Run(c.name, func(t *testing.T) {
			srv := redistest.Start(t)
			path := filepath.Join(t.TempDir(), "breakers.state")
			b := newInstance(t, srv, "b", core.BreakerConfig{}, RedisConfig{})
			b.loaded(t, "api")

			// a trips, and stops with Open saved in its file.
			attachFile, closeFile := withFile(t, path)
			a1 := newInstanceWith(t, srv, "a", core.BreakerConfig{}, RedisConfig{}, attachFile)
			a1.loaded(t, "api")
			a1.breaker(t, "api").Trip("before the restart")
			bb := b.breaker(t, "api")
			wait.For(t, testWait, "b to open", func() bool { return bb.State() == events.Open })
			a1.close()
			closeFile()
			if st, _ := savedState(path, "api"); st != events.Open {
				t.Fatalf("saved %s", st)
			}

			// While a is down, the cluster is reset.
			if err := b.s.Reset(context.Background(), "api"); err != nil {
				t.Fatal(err)
			}
			wait.For(t, testWait, "b to close", func() bool { return bb.State() == events.Closed })

			// a restarts: the file says Open, the cluster (newer) Closed.
			attachFile2, _ := withFile(t, path)
			var a2 *instance
			rc := RedisConfig{Clock: c.clock}
			switch order {
			case fileFirst:
				a2 = newInstanceWith(t, srv, "a", core.BreakerConfig{}, rc, attachFile2)
			case redisFirst:
				a2 = newInstanceWith(t, srv, "a", core.BreakerConfig{}, rc, nil)
				attachFile2(a2.m)
			case afterLoad:
				a2 = newInstanceWith(t, srv, "a", core.BreakerConfig{}, rc, nil)
				a2.loaded(t, "api")
				attachFile2(a2.m)
			}
			ba := a2.breaker(t, "api")
			wait.For(t, testWait, "a to adopt the cluster's newer state", func() bool { return ba.State() == events.Closed })
			settle(t, a2, b)
			if ba.State() != events.Closed || bb.State() != events.Closed {
				t.Fatalf("a %s, b %s: the stale file won", ba.State(), bb.State())
			}
			if n := a2.rec.count(isWin("api", events.Open)); n != 0 {
				t.Errorf("the restore was announced as a transition %d times", n)
			}
		})
	}
}

func TestRedisRestoredStateFillsAnEmptyCluster(t *testing.T) {
	srv := redistest.Start(t)
	path := filepath.Join(t.TempDir(), "breakers.state")
	// A file saved by an earlier run, with no shared state in Redis.
	m, _ := core.NewManager(core.ManagerConfig{})
	fs, err := NewFileStore(FileConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := fs.AttachManager(m); err != nil {
		t.Fatal(err)
	}
	br, _ := breakerOf(m, "api")
	br.Trip("last week")
	if err := fs.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	b := newInstance(t, srv, "b", core.BreakerConfig{}, RedisConfig{})
	b.loaded(t, "api")
	attachFile, _ := withFile(t, path)
	a := newInstanceWith(t, srv, "a", core.BreakerConfig{}, RedisConfig{}, attachFile)
	if st := a.breaker(t, "api").State(); st != events.Open {
		t.Fatalf("restored %s", st)
	}
	bb := b.breaker(t, "api")
	wait.For(t, testWait, "b to learn the restored state", func() bool { return bb.State() == events.Open })
}
