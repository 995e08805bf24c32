// Package probetest holds what the tests of the health packages share:
// servers that misbehave, a dead address, and checks of results and
// configuration errors.
package probetest

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/health"
)

// HungServer accepts TCP connections and never answers; the test's cleanup
// closes it and every connection it accepted.
func HungServer(t testing.TB) (addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		done  = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// DeadAddr returns a local address nothing listens on.
func DeadAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// MustPass runs one check and fails the test unless it passed with a
// complete result.
func MustPass(t testing.TB, p health.Probe) health.Result {
	t.Helper()
	r := p.Check(context.Background())
	if !r.OK || r.Err != nil {
		t.Fatalf("%s: check failed: %v", p.Name(), r.Err)
	}
	if r.Probe != p.Name() || r.Time.IsZero() || r.Latency <= 0 {
		t.Fatalf("%s: incomplete result %+v", p.Name(), r)
	}
	return r
}

// MustFail runs one check and fails the test unless it failed with an
// error containing contains.
func MustFail(t testing.TB, p health.Probe, contains string) health.Result {
	t.Helper()
	r := p.Check(context.Background())
	if r.OK || r.Err == nil {
		t.Fatalf("%s: check passed, want a failure containing %q", p.Name(), contains)
	}
	if !strings.Contains(r.Err.Error(), contains) {
		t.Fatalf("%s: error %q, want it to contain %q", p.Name(), r.Err, contains)
	}
	return r
}

// ConfigFields fails the test unless err is made of *core.ConfigError
// values naming exactly the fields want, in any order, each matching
// core.ErrInvalidConfig.
func ConfigFields(t testing.TB, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want ConfigErrors for %v", want)
	}
	var ce *core.ConfigError
	if !errors.As(err, &ce) || !errors.Is(err, core.ErrInvalidConfig) {
		t.Fatalf("error %v is not a *core.ConfigError", err)
	}
	var got []string
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var ce *core.ConfigError
		if !errors.As(e, &ce) {
			t.Errorf("error %v is not a *core.ConfigError", e)
			return
		}
		if ce.Rule == "" {
			t.Errorf("%s: no rule", ce.Field)
		}
		got = append(got, ce.Field)
	}
	walk(err)
	slices.Sort(got)
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Fatalf("bad fields %v, want %v\nerror: %v", got, want, err)
	}
}
