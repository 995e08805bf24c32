package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/store"
)

// A breaker that was open when the service stopped is open again after the
// restart, for what remained of its open time only.
func ExampleFileStore() {
	dir, err := os.MkdirTemp("", "bulwark-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "breakers.state")
	clock := core.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))

	// run starts the service: a Manager whose breakers are kept in path.
	run := func() (*core.Manager, *store.FileStore) {
		m, err := core.NewManager(core.ManagerConfig{
			Defaults: core.EndpointConfig{Breaker: &core.BreakerConfig{Timeout: time.Minute}},
			Clock:    clock,
		})
		if err != nil {
			panic(err)
		}
		fs, err := store.NewFileStore(store.FileConfig{Path: path, Clock: clock})
		if err != nil {
			panic(err)
		}
		if err := fs.AttachManager(m); err != nil {
			panic(err)
		}
		return m, fs
	}

	m, fs := run()
	e, _ := m.Endpoint("GET /users/{id}")
	b := e.Breaker()
	b.Trip("upstream down")
	clock.Advance(20 * time.Second)
	if err := fs.Close(context.Background()); err != nil { // the service stops
		panic(err)
	}

	m, fs = run() // and starts again
	defer fs.Close(context.Background())
	e, _ = m.Endpoint("GET /users/{id}")
	b = e.Breaker()
	snap := b.Snapshot()
	fmt.Println(b.State(), b.RetryAfter(), snap.Reason)
	// Output: Open 40s restored: upstream down
}
