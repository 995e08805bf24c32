// Command filecrash is the program that the store package's crash test kills. It loads
// the state file named by its argument through a store.FileStore, prints
// "ready" once the store has replaced the file, and makes breaker transitions
// as fast as it can, so that the store writes without pause, until it is
// killed. It exits with status 3 if the file it found could not be loaded.
package main

import (
	"fmt"
	"github.com/bulwark-go/bulwark/events"
	"log/slog"
	"os"
	"runtime"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/store"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: filecrash STATE-FILE")
		os.Exit(2)
	}
	path := os.Args[1]
	before, _ := os.Stat(path)
	fs, err := store.NewFileStore(store.FileConfig{Path: path, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fail(err)
	}
	if err := fs.LoadErr(); err != nil {
		fail(err) // what an earlier kill left could not be read
	}
	m, err := core.NewManager(core.ManagerConfig{})
	if err != nil {
		fail(err)
	}
	if err := fs.AttachManager(m); err != nil {
		fail(err)
	}
	// Enough breakers that a write takes a while and a kill can land in it.
	bs := make([]*core.Breaker, 100)
	for i := range bs {
		e, err := m.Endpoint(fmt.Sprintf("GET /api/v1/resources/%04d/items/{id}", i))
		if err != nil {
			fail(err)
		}
		bs[i] = e.Breaker()
	}
	ready := false
	for i := 0; ; i++ {
		b := bs[i%len(bs)]
		b.RecordSuccess()
		if b.State() == events.Closed {
			b.Trip("crash test")
		} else {
			b.Reset()
		}
		if i%len(bs) != 0 {
			continue
		}
		if !ready {
			if fi, err := os.Stat(path); err == nil && changed(before, fi) {
				ready = true
				fmt.Println("ready")
			}
		}
		runtime.Gosched()
	}
}

// changed reports whether the store has written the file since before was
// taken (nil: there was no file).
func changed(before, now os.FileInfo) bool {
	return before == nil || !os.SameFile(before, now) ||
		!now.ModTime().Equal(before.ModTime()) || now.Size() != before.Size()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(3)
}
