package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
	"github.com/bulwark-go/bulwark/internal/wait"
)

var fileQuiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// fileProcess is one run of a service: a Manager and its FileStore.
type fileProcess struct {
	m  *core.Manager
	fs *FileStore
}

func startFileStore(t *testing.T, path string, clk core.Clock, cfg FileConfig) fileProcess {
	t.Helper()
	m, err := core.NewManager(core.ManagerConfig{
		Defaults: core.EndpointConfig{Breaker: &core.BreakerConfig{FailureThreshold: 3, Timeout: time.Minute}},
		Clock:    clk,
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Path, cfg.Clock, cfg.Logger = path, clk, fileQuiet
	fs, err := NewFileStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := fs.AttachManager(m); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fs.Close(context.Background()) })
	return fileProcess{m, fs}
}

func (p fileProcess) breaker(t *testing.T, name string) *core.Breaker {
	t.Helper()
	b, err := breakerOf(p.m, name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (p fileProcess) stop(t *testing.T) {
	t.Helper()
	if err := p.fs.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.fs.done:
	default:
		t.Fatal("writer still running after Close")
	}
}

func readFileRecords(t *testing.T, path string) map[string]core.Snapshot {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	recs, _, err := decodeFile(data)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]core.Snapshot, len(recs))
	for _, r := range recs {
		out[r.Endpoint] = r
	}
	return out
}

// fileTraffic reports calls so that every lifetime count is non-zero.
func fileTraffic(b *core.Breaker, ok, failed int) {
	for range ok {
		b.RecordSuccess()
	}
	for range failed {
		b.RecordFailure()
		b.RecordSuccess() // keep a threshold of 3 from opening it
	}
}

func TestFileStoreRestoresEveryState(t *testing.T) {
	path := filepath.Join(t.TempDir(), "breakers.state")
	clk := core.NewFakeClock(fileT0)
	p := startFileStore(t, path, clk, FileConfig{})
	set := map[string]func(*core.Breaker){
		"closed":      func(b *core.Breaker) { b.RecordFailure(); b.RecordFailure() },
		"open":        func(b *core.Breaker) { b.Trip("upstream down") },
		"half-open":   func(b *core.Breaker) { b.ForceOpen("maintenance"); b.Release("done") },
		"forced-open": func(b *core.Breaker) { b.ForceOpen("maintenance") },
		"disabled":    func(b *core.Breaker) { b.Disable() },
	}
	want := map[string]core.Snapshot{}
	for name, f := range set {
		b := p.breaker(t, name)
		fileTraffic(b, 7, 3)
		b.ForceOpen("count a rejection")
		if _, err := b.Allow(); err == nil {
			t.Fatalf("%s: allowed while forced open", name)
		}
		b.Reset()
		f(b)
		want[name] = b.Snapshot()
	}
	clk.Advance(time.Second)
	p.stop(t)

	p = startFileStore(t, path, clk, FileConfig{})
	if err := p.fs.LoadErr(); err != nil {
		t.Fatal(err)
	}
	for name, w := range want {
		got := p.breaker(t, name).Snapshot()
		if got.State != w.State {
			t.Errorf("%s: state %s, want %s", name, got.State, w.State)
		}
		if got.TotalRequests != w.TotalRequests || got.SuccessfulRequests != w.SuccessfulRequests ||
			got.FailedRequests != w.FailedRequests || got.RejectedRequests != w.RejectedRequests ||
			got.SlowRequests != w.SlowRequests {
			t.Errorf("%s: counts %d/%d/%d/%d/%d, want %d/%d/%d/%d/%d", name,
				got.TotalRequests, got.SuccessfulRequests, got.FailedRequests, got.RejectedRequests, got.SlowRequests,
				w.TotalRequests, w.SuccessfulRequests, w.FailedRequests, w.RejectedRequests, w.SlowRequests)
		}
		if !got.LastStateChange.Equal(w.LastStateChange) {
			t.Errorf("%s: last change %v, want %v", name, got.LastStateChange, w.LastStateChange)
		}
		if !got.OpenUntil.Equal(w.OpenUntil) {
			t.Errorf("%s: open until %v, want %v", name, got.OpenUntil, w.OpenUntil)
		}
		if got.Reason != "restored: "+w.Reason {
			t.Errorf("%s: reason %q, want the saved one %q", name, got.Reason, w.Reason)
		}
	}
	if got := p.breaker(t, "closed").Snapshot().ConsecutiveFailures; got != 2 {
		t.Errorf("consecutive failures %d, want 2", got)
	}

	// The file holds what the breakers held, consecutive counts included.
	p.stop(t)
	recs := readFileRecords(t, path)
	for name, w := range want {
		r := recs[name]
		if r.ConsecutiveFailures != w.ConsecutiveFailures && name == "closed" {
			t.Errorf("%s: stored consecutive failures %d, want %d", name, r.ConsecutiveFailures, w.ConsecutiveFailures)
		}
		if r.Reason != w.Reason {
			t.Errorf("%s: stored reason %q after a restart, want %q", name, r.Reason, w.Reason)
		}
	}
}

func TestFileStoreRestartKeepsRemainingOpenTime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "breakers.state")
	clk := core.NewFakeClock(fileT0)
	p := startFileStore(t, path, clk, FileConfig{})
	b := p.breaker(t, "GET /users/{id}")
	for range 3 {
		b.RecordFailure()
	}
	if b.State() != events.Open {
		t.Fatalf("state %s after 3 failures", b.State())
	}
	clk.Advance(20 * time.Second)
	p.stop(t)

	p = startFileStore(t, path, clk, FileConfig{})
	b = p.breaker(t, "GET /users/{id}")
	if b.State() != events.Open || b.RetryAfter() != 40*time.Second {
		t.Fatalf("restored %s with RetryAfter %v, want Open with 40s", b.State(), b.RetryAfter())
	}
	_, err := b.Allow()
	var rej *core.RejectedError
	if !errors.As(err, &rej) || rej.RetryAfter() != 40*time.Second {
		t.Fatalf("Allow: %v", err)
	}
	clk.Advance(40 * time.Second)
	if _, err := b.Allow(); err != nil || b.State() != events.HalfOpen {
		t.Fatalf("after the remaining 40s: %v in %s", err, b.State())
	}
}

func TestFileStoreElapsedOpenTimeComesBackHalfOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "breakers.state")
		clk := core.NewFakeClock(fileT0)
		p := startFileStore(t, path, clk, FileConfig{})
		p.breaker(t, "a").Trip("down")
		p.stop(t)

		clk.Advance(2 * time.Minute) // down longer than the 60s timeout
		p = startFileStore(t, path, clk, FileConfig{})
		b := p.breaker(t, "a")
		if b.State() != events.HalfOpen {
			t.Fatalf("state %s, want HalfOpen", b.State())
		}
		synctest.Wait() // the writer has handled the restore
		if r := readFileRecords(t, path); len(r) != 1 || r["a"].State != events.HalfOpen {
			t.Fatalf("the HalfOpen state is not saved before Close: %v", r)
		}
	})
}

func TestFileStoreMissingFileIsAFreshStart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "breakers.state")
	p := startFileStore(t, path, core.NewFakeClock(fileT0), FileConfig{})
	if err := p.fs.LoadErr(); err != nil {
		t.Fatal(err)
	}
	if p.fs.path != path {
		t.Fatalf("path %q", p.fs.path)
	}
	if b := p.breaker(t, "a"); b.State() != events.Closed {
		t.Fatalf("state %s", b.State())
	}
	p.stop(t)
	if recs := readFileRecords(t, path); len(recs) != 1 || recs["a"].State != events.Closed {
		t.Fatalf("file after Close: %v", recs)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("folder holds %v, want the state file only", entries)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", fi.Mode(), err)
	}
}

func TestFileStoreCorruptFileIsMovedAside(t *testing.T) {
	valid := mustEncodeFile(t, []core.Snapshot{{Endpoint: "a", State: events.ForcedOpen, Reason: "x", LastStateChange: fileT0}})
	cases := map[string][]byte{
		"bad magic": append([]byte("XXXXXXXX"), valid[8:]...),
		"bad crc":   append(bytes.Clone(valid[:len(valid)-1]), valid[len(valid)-1]^0x80),
		"truncated": valid[:len(valid)-7],
		"garbage":   []byte("this is not a state file, it is a shopping list\n"),
		"empty":     {},
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "breakers.state")
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			clk := core.NewFakeClock(fileT0)
			var logs bytes.Buffer
			var logMu sync.Mutex
			m, _ := core.NewManager(core.ManagerConfig{Clock: clk})
			fs, err := NewFileStore(FileConfig{Path: path, Clock: clk,
				Logger: slog.New(slog.NewTextHandler(fileLogWriter{&logMu, &logs}, nil))})
			if err != nil {
				t.Fatalf("NewFileStore: %v", err)
			}
			defer fs.Close(context.Background())
			err = fs.LoadErr()
			var le *LoadError
			if !errors.As(err, &le) || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("LoadErr = %v, want a *LoadError matching ErrCorrupt", err)
			}
			aside := path + ".corrupt-20260314T150926Z"
			if le.Path != path || le.MovedTo != aside || !strings.Contains(err.Error(), path) ||
				!strings.Contains(err.Error(), aside) {
				t.Fatalf("error %q (moved to %q) does not name the file and where it went", err, le.MovedTo)
			}
			t.Log(err)
			if got, err := os.ReadFile(aside); err != nil || !bytes.Equal(got, content) {
				t.Fatalf("moved-aside file: %q, %v", got, err)
			}
			logMu.Lock()
			if !strings.Contains(logs.String(), "WARN") || !strings.Contains(logs.String(), aside) {
				t.Errorf("no warning logged: %s", logs.String())
			}
			logMu.Unlock()

			if err := fs.AttachManager(m); err != nil {
				t.Fatal(err)
			}
			b, _ := breakerOf(m, "a")
			if b.State() != events.Closed {
				t.Fatalf("state %s, want Closed", b.State())
			}
			// A fresh file is written at once, and the store keeps working.
			wait.For(t, testWait, "a fresh state file", func() bool {
				data, err := os.ReadFile(path)
				if err != nil {
					return false
				}
				_, _, err = decodeFile(data)
				return err == nil
			})
			b.Trip("down")
			if err := fs.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if r := readFileRecords(t, path)["a"]; r.State != events.Open {
				t.Fatalf("saved %s", r.State)
			}
		})
	}
}

type fileLogWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l fileLogWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestFileStoreNeverOverwritesAMovedAsideFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "breakers.state")
	clk := core.NewFakeClock(fileT0)
	for i := range 3 { // the same second each time
		content := fmt.Appendf(nil, "garbage %d", i)
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		fs, err := NewFileStore(FileConfig{Path: path, Clock: clk, Logger: fileQuiet})
		if err != nil {
			t.Fatal(err)
		}
		var le *LoadError
		if !errors.As(fs.LoadErr(), &le) {
			t.Fatalf("LoadErr %v", fs.LoadErr())
		}
		if got, _ := os.ReadFile(le.MovedTo); !bytes.Equal(got, content) {
			t.Fatalf("run %d: %s holds %q", i, le.MovedTo, got)
		}
		if err := fs.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		os.Remove(path)
	}
	matches, _ := filepath.Glob(path + ".corrupt-*")
	if len(matches) != 3 {
		t.Fatalf("moved-aside files %v, want 3", matches)
	}
}

func TestFileStoreUnreadableFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "breakers.state")
	if err := os.Mkdir(path, 0o700); err != nil { // reading a folder fails
		t.Fatal(err)
	}
	p := startFileStore(t, path, core.NewFakeClock(fileT0), FileConfig{})
	var le *LoadError
	err := p.fs.LoadErr()
	if !errors.As(err, &le) || errors.Is(err, ErrCorrupt) || le.MovedTo == "" {
		t.Fatalf("LoadErr = %v", err)
	}
	p.breaker(t, "a").Trip("x")
	p.stop(t)
	if r := readFileRecords(t, path)["a"]; r.State != events.Open {
		t.Fatalf("saved %s", r.State)
	}
}

func TestFileStoreKeepsRecordsOfEndpointsNotCreatedYet(t *testing.T) {
	path := filepath.Join(t.TempDir(), "breakers.state")
	clk := core.NewFakeClock(fileT0)
	p := startFileStore(t, path, clk, FileConfig{})
	p.breaker(t, "a").ForceOpen("x")
	p.breaker(t, "b").Disable()
	p.stop(t)

	p = startFileStore(t, path, clk, FileConfig{}) // this run only uses "a"
	p.breaker(t, "a").Reset()
	p.stop(t)
	recs := readFileRecords(t, path)
	if recs["a"].State != events.Closed || recs["b"].State != events.Disabled {
		t.Fatalf("file %v", recs)
	}

	p = startFileStore(t, path, clk, FileConfig{})
	p.breaker(t, "a")
	if b := p.breaker(t, "b"); b.State() != events.Disabled {
		t.Fatalf("b created late came back %s", b.State())
	}
}

func TestFileStoreAttachManagerRestoresExistingBreakers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "breakers.state")
	clk := core.NewFakeClock(fileT0)
	p := startFileStore(t, path, clk, FileConfig{})
	p.breaker(t, "a").ForceOpen("x")
	p.stop(t)

	m, _ := core.NewManager(core.ManagerConfig{Clock: clk})
	b, _ := breakerOf(m, "a") // made before the store is attached
	fs, err := NewFileStore(FileConfig{Path: path, Clock: clk, Logger: fileQuiet})
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close(context.Background())
	if err := fs.AttachManager(m); err != nil {
		t.Fatal(err)
	}
	if err := fs.AttachManager(m); err != nil { // twice is harmless
		t.Fatal(err)
	}
	if b.State() != events.ForcedOpen {
		t.Fatalf("state %s", b.State())
	}
}

func TestFileStoreSingleBreaker(t *testing.T) {
	path := filepath.Join(t.TempDir(), "one.state")
	clk := core.NewFakeClock(fileT0)
	newBreaker := func() *core.Breaker {
		b, err := core.NewBreaker(core.BreakerConfig{Name: "payments", Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	fs, err := NewFileStore(FileConfig{Path: path, Clock: clk, Logger: fileQuiet})
	if err != nil {
		t.Fatal(err)
	}
	b := newBreaker()
	if err := fs.Attach(b); err != nil {
		t.Fatal(err)
	}
	if err := fs.Attach(b); err != nil {
		t.Fatalf("attaching again: %v", err)
	}
	if err := fs.Attach(newBreaker()); err == nil {
		t.Fatal("a second breaker with the same name was attached")
	}
	b.Trip("down")
	clk.Advance(15 * time.Second)
	if err := fs.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := fs.Attach(newBreaker()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Attach after Close: %v", err)
	}
	if err := fs.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	fs, err = NewFileStore(FileConfig{Path: path, Clock: clk, Logger: fileQuiet})
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close(context.Background())
	b = newBreaker()
	if err := fs.Attach(b); err != nil {
		t.Fatal(err)
	}
	if b.State() != events.Open || b.RetryAfter() != 45*time.Second {
		t.Fatalf("restored %s, RetryAfter %v", b.State(), b.RetryAfter())
	}
}

func TestFileStoreRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	for _, cfg := range []FileConfig{{Interval: time.Millisecond}, {Interval: -time.Second}, {Interval: 48 * time.Hour}, {Perm: os.ModeDir | 0o600}} {
		cfg.Path = filepath.Join(dir, "s")
		if _, err := NewFileStore(cfg); !errors.Is(err, core.ErrInvalidConfig) {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
	if _, err := NewFileStore(FileConfig{}); err == nil {
		t.Error("empty path accepted")
	}
	if _, err := NewFileStore(FileConfig{Path: filepath.Join(dir, "missing", "s")}); err == nil {
		t.Error("missing folder accepted")
	}
	fs, err := NewFileStore(FileConfig{Path: filepath.Join(dir, "s"), Logger: fileQuiet})
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close(context.Background())
	b, _ := core.NewBreaker(core.BreakerConfig{Name: "bad\nname"})
	if err := fs.Attach(b); !errors.Is(err, core.ErrInvalidEndpoint) {
		t.Errorf("invalid endpoint attached: %v", err)
	}
}

func TestFileStorePeriodicSave(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "breakers.state")
		clk := core.NewFakeClock(fileT0)
		p := startFileStore(t, path, clk, FileConfig{Interval: 10 * time.Second})
		b := p.breaker(t, "a")
		synctest.Wait()
		if n := p.fs.writes.Load(); n != 1 {
			t.Fatalf("%d writes after the first attach, want 1", n)
		}

		fileTraffic(b, 5, 0) // no transition: only the periodic save sees it
		clk.Advance(10*time.Second - 1)
		synctest.Wait()
		if n := p.fs.writes.Load(); n != 1 {
			t.Fatalf("%d writes before the interval, want 1", n)
		}
		clk.Advance(1)
		synctest.Wait()
		if n := p.fs.writes.Load(); n != 2 {
			t.Fatalf("%d writes after the interval, want 2", n)
		}
		if r := readFileRecords(t, path)["a"]; r.TotalRequests != 5 {
			t.Fatalf("stored total %d", r.TotalRequests)
		}

		// Nothing changed: neither the next tick nor Close writes.
		clk.Advance(10 * time.Second)
		synctest.Wait()
		if clk.Timers() != 1 {
			t.Fatalf("%d timers after the tick, want the next interval's", clk.Timers())
		}
		p.stop(t)
		if n := p.fs.writes.Load(); n != 2 {
			t.Fatalf("%d writes, want 2", n)
		}
	})
}

func TestFileStoreRetriesFailedSaves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "breakers.state")
		clk := core.NewFakeClock(fileT0)
		// A folder where the temporary file goes makes every save fail.
		if err := os.Mkdir(path+".tmp", 0o700); err != nil {
			t.Fatal(err)
		}
		p := startFileStore(t, path, clk, FileConfig{})
		p.breaker(t, "a").Trip("down")
		synctest.Wait()
		if clk.Timers() != 1 || p.fs.writes.Load() != 0 {
			t.Fatalf("%d timers and %d writes after a failed save, want a retry timer and none", clk.Timers(), p.fs.writes.Load())
		}
		if err := os.Remove(path + ".tmp"); err != nil {
			t.Fatal(err)
		}
		clk.Advance(fileMinRetry - 1)
		synctest.Wait()
		if n := p.fs.writes.Load(); n != 0 {
			t.Fatalf("retried after %v, before its %v backoff", fileMinRetry-1, fileMinRetry)
		}
		clk.Advance(1)
		synctest.Wait()
		if n := p.fs.writes.Load(); n != 1 {
			t.Fatalf("%d writes after the retry, want 1", n)
		}
		if r := readFileRecords(t, path)["a"]; r.State != events.Open {
			t.Fatalf("saved %s", r.State)
		}
	})
}

func TestFileStoreCloseHonoursContext(t *testing.T) {
	p := startFileStore(t, filepath.Join(t.TempDir(), "s"), core.NewFakeClock(fileT0), FileConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := p.fs.Close(ctx)
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	<-p.fs.done // the final save goes on without the caller
	if err := p.fs.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestFileStoreTransitionStorm drives thousands of transitions from many
// goroutines: the file must end equal to the final state, written far fewer
// times than there were transitions.
func TestFileStoreTransitionStorm(t *testing.T) {
	path := filepath.Join(t.TempDir(), "breakers.state")
	clk := core.NewFakeClock(fileT0)
	p := startFileStore(t, path, clk, FileConfig{})
	const endpoints, workers, rounds = 8, 16, 300
	var transitions atomic.Int64
	bs := make([]*core.Breaker, endpoints)
	for i := range bs {
		bs[i] = p.breaker(t, fmt.Sprintf("GET /e%d", i))
		bs[i].OnStateChange(func(events.StateChange) { transitions.Add(1) })
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				b := bs[(w+r)%endpoints]
				switch (w + r) % 5 {
				case 0:
					b.Trip("storm")
				case 1:
					b.ForceOpen("storm")
				case 2:
					b.Reset()
				case 3:
					b.Disable()
				case 4:
					b.Release("storm")
				}
				b.RecordSuccess()
				b.RecordFailure()
			}
		})
	}
	wg.Wait()
	p.stop(t)

	recs := readFileRecords(t, path)
	if len(recs) != endpoints {
		t.Fatalf("%d records", len(recs))
	}
	for _, b := range bs {
		want, got := storableSnapshot(b.Snapshot()), recs[b.Name()]
		if got.State != want.State || got.Reason != want.Reason || !got.LastStateChange.Equal(want.LastStateChange) ||
			got.TotalRequests != want.TotalRequests || got.FailedRequests != want.FailedRequests ||
			got.RejectedRequests != want.RejectedRequests || got.ConsecutiveFailures != want.ConsecutiveFailures {
			t.Errorf("%s: file %+v\nbreaker %+v", b.Name(), got, want)
		}
	}
	n, writes := transitions.Load(), p.fs.writes.Load()
	t.Logf("%d transitions, %d writes", n, writes)
	if n < 3000 {
		t.Fatalf("only %d transitions", n)
	}
	if writes > n/10 {
		t.Fatalf("%d writes for %d transitions: not coalesced", writes, n)
	}
}

func TestFileStoreSavesOnEveryTransition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "breakers.state")
		p := startFileStore(t, path, core.NewFakeClock(fileT0), FileConfig{})
		b := p.breaker(t, "a")
		synctest.Wait()
		for _, step := range []struct {
			do   func()
			want events.State
		}{
			{func() { b.Trip("down") }, events.Open},
			{func() { b.ForceOpen("hold") }, events.ForcedOpen},
			{func() { b.Release("go") }, events.HalfOpen},
			{func() { b.RecordSuccess(); b.RecordSuccess() }, events.Closed},
			{func() { b.Disable() }, events.Disabled},
		} {
			before := p.fs.writes.Load()
			step.do()
			synctest.Wait()
			if r := readFileRecords(t, path); len(r) != 1 || r["a"].State != step.want || p.fs.writes.Load() != before+1 {
				t.Fatalf("after the transition to %s the file holds %v (%d writes)", step.want, r, p.fs.writes.Load()-before)
			}
		}
	})
}
