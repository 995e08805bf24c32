package store

import (
	"context"
	"errors"
	"fmt"
	"github.com/bulwark-go/bulwark/events"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/health"
	"github.com/bulwark-go/bulwark/internal/redistest"
	"github.com/bulwark-go/bulwark/internal/wait"
)

// permutations returns every order of xs.
func permutations(xs []string) [][]string {
	if len(xs) <= 1 {
		return [][]string{xs}
	}
	var out [][]string
	for i := range xs {
		rest := append(append([]string(nil), xs[:i]...), xs[i+1:]...)
		for _, p := range permutations(rest) {
			out = append(out, append([]string{xs[i]}, p...))
		}
	}
	return out
}

// A health monitor holds a breaker; whatever order the file store, the
// Redis store and the monitor close in, the hold ends with the process:
// Redis and the state file both end HalfOpen, held by nobody.
func TestCloseOrderDoesNotMatter(t *testing.T) {
	srv := redistest.Start(t)
	raw := newTestClient(t, srv)
	ctx := context.Background()
	for i, order := range permutations([]string{"file", "redis", "monitor"}) {
		t.Run(strings.Join(order, ","), func(t *testing.T) {
			endpoint := fmt.Sprintf("db-%d", i)
			keys := newRedisKeys("bulwark", endpoint)
			path := filepath.Join(t.TempDir(), "breakers.state")
			m, err := core.NewManager(core.ManagerConfig{})
			if err != nil {
				t.Fatal(err)
			}
			files, err := NewFileStore(FileConfig{Path: path, Logger: fileQuiet})
			if err != nil {
				t.Fatal(err)
			}
			if err := files.AttachManager(m); err != nil {
				t.Fatal(err)
			}
			shared, err := NewRedisStore(RedisConfig{Client: newTestClient(t, srv), InstanceID: "a", SyncInterval: testSync, Logger: fileQuiet})
			if err != nil {
				t.Fatal(err)
			}
			if err := shared.AttachManager(m); err != nil {
				t.Fatal(err)
			}
			mon, err := health.NewMonitor(health.MonitorConfig{Manager: m, Logger: fileQuiet})
			if err != nil {
				t.Fatal(err)
			}
			probe, err := health.NewCustomProbe(health.CustomProbeConfig{Name: "ping",
				Checker: health.CheckerFunc(func(context.Context) error { return errors.New("down") })})
			if err != nil {
				t.Fatal(err)
			}
			closers := map[string]func(context.Context) error{"file": files.Close, "redis": shared.Close, "monitor": mon.Close}
			t.Cleanup(func() {
				for _, c := range closers {
					_ = c(ctx)
				}
			})
			if err := mon.Watch(endpoint, probe, health.WatchConfig{Interval: 50 * time.Millisecond, FailureThreshold: 1}); err != nil {
				t.Fatal(err)
			}
			wait.For(t, testWait, "the monitor's hold in Redis and in the file", func() bool {
				h := raw.HGetAll(ctx, keys.state).Val()
				r, ok := fileRecord(path, endpoint)
				return h["state"] == "ForcedOpen" && h["held_by"] == "health ping" && ok && r.HeldBy == "health ping"
			})

			for _, name := range order {
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				if err := closers[name](cctx); err != nil {
					t.Errorf("close %s: %v", name, err)
				}
				cancel()
			}

			if h := raw.HGetAll(ctx, keys.state).Val(); h["state"] != "HalfOpen" || h["held_by"] != "" {
				t.Errorf("Redis holds %s held by %q (%q), want HalfOpen held by nobody", h["state"], h["held_by"], h["reason"])
			}
			if r, ok := fileRecord(path, endpoint); !ok || r.State != events.HalfOpen || r.HeldBy != "" {
				t.Errorf("the file holds %s held by %q (%q), want HalfOpen held by nobody", r.State, r.HeldBy, r.Reason)
			}
			// And a restart from that file restores it so.
			m2, err := core.NewManager(core.ManagerConfig{})
			if err != nil {
				t.Fatal(err)
			}
			again, err := NewFileStore(FileConfig{Path: path, Logger: fileQuiet})
			if err != nil {
				t.Fatal(err)
			}
			defer again.Close(ctx)
			if err := again.AttachManager(m2); err != nil {
				t.Fatal(err)
			}
			e, ok := m2.Lookup(endpoint)
			if !ok {
				t.Fatal("not restored")
			}
			if s := e.Breaker().Snapshot(); s.State != events.HalfOpen || s.HeldBy != "" {
				t.Errorf("restarted %s held by %q", s.State, s.HeldBy)
			}
		})
	}
}

// fileRecord reads endpoint's record from the state file as it is now.
func fileRecord(path, endpoint string) (core.Snapshot, bool) {
	data, err := readStateFile(path)
	if err != nil {
		return core.Snapshot{}, false
	}
	recs, _, err := decodeFile(data)
	if err != nil {
		return core.Snapshot{}, false
	}
	for _, r := range recs {
		if r.Endpoint == endpoint {
			return r, true
		}
	}
	return core.Snapshot{}, false
}
