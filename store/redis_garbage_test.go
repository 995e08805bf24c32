package store

import (
	"context"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
	"github.com/bulwark-go/bulwark/internal/redistest"
	"github.com/bulwark-go/bulwark/internal/wait"
)

func storeError(endpoint, contains string) func(events.Event) bool {
	return func(e events.Event) bool {
		s, ok := e.(events.StoreStatus)
		return ok && s.Status == events.StoreError && s.Endpoint == endpoint && strings.Contains(s.Error, contains)
	}
}

func TestRedisRejectsGarbage(t *testing.T) {
	srv := redistest.Start(t)
	a := newInstance(t, srv, "a", core.BreakerConfig{}, RedisConfig{})
	b := newInstance(t, srv, "b", core.BreakerConfig{}, RedisConfig{})
	names := []string{"bad-state", "bad-type", "bad-window", "bad-agg", "bad-message", "valid-looking"}
	for _, n := range names {
		a.loaded(t, n)
		b.loaded(t, n)
	}
	raw := newTestClient(t, srv)
	ctx := context.Background()
	keys := func(n string) redisKeys { return newRedisKeys("bulwark", n) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	// A state hash of nonsense, a key of the wrong type, window entries
	// (of the version 1 format, and aggregates) that are not counts, and a
	// hash that Lua reads but that holds impossible values (far-future
	// open time, bad origin).
	must(raw.HSet(ctx, keys("bad-state").state, "version", "12abc", "state", "Sideways", "open_until", "-5").Err())
	must(raw.Set(ctx, keys("bad-type").state, "not a hash", 0).Err())
	must(raw.HSet(ctx, keys("bad-window").window, "intruder", "lots of failures", "liar", "5 9 0 1 0").Err())
	must(raw.Set(ctx, aggKey("bad-agg", core.BreakerConfig{}), "not a hash", 0).Err())
	// Windows are read by instances with calls in theirs.
	for _, n := range []string{"bad-window", "bad-agg"} {
		for _, in := range []*instance{a, b} {
			in.breaker(t, n).RecordSuccess()
			in.breaker(t, n).RecordSuccess()
		}
	}
	must(raw.HSet(ctx, keys("valid-looking").state, "version", "3", "state", "Open", "old_state", "Closed",
		"open_until", "99999999999999", "reason", "x", "origin", "someone", "updated", "1").Err())
	for _, c := range []struct{ endpoint, contains string }{
		{"bad-state", "not an integer"},
		{"bad-type", "not a hash"},
		{"bad-window", "removed 2 malformed"},
		{"bad-agg", "removed 1 malformed"},
		{"valid-looking", "out of range"},
	} {
		// Whichever instance syncs first reports (and, for the window,
		// removes) it.
		wait.For(t, testWait, "an error event for "+c.endpoint, func() bool {
			return a.rec.count(storeError(c.endpoint, c.contains))+b.rec.count(storeError(c.endpoint, c.contains)) >= 1
		})
	}

	// Messages that are not JSON, or JSON with impossible values.
	bad := []string{
		`{{{`,
		`{"endpoint":"bad-message","version":99,"state":"Open","old_state":"Closed","open_until":99999999999999,"reason":"","origin":"x","updated":1}`,
		`{"endpoint":"bad-message","version":99,"state":"Sideways","old_state":"Closed","open_until":0,"reason":"","origin":"x","updated":1}`,
		`{"endpoint":"bad-message","version":99,"state":"Open","extra":1}`,
	}
	for _, m := range bad {
		must(raw.Publish(ctx, "bulwark:transitions", m).Err())
	}
	wait.For(t, testWait, "error events for the messages", func() bool {
		return a.rec.count(storeError("", "transition message")) >= 1 && b.rec.count(storeError("", "transition message")) >= 1
	})
	settle(t, a, b)

	for _, n := range names {
		for _, in := range []*instance{a, b} {
			if st := in.breaker(t, n).State(); st != events.Closed {
				t.Errorf("%s on %s: %s after garbage", n, in.s.InstanceID(), st)
			}
		}
	}
	for _, n := range []string{"bad-window", "bad-agg"} {
		if s := a.breaker(t, n).Snapshot(); s.WindowRequests > 4 || s.WindowFailures != 0 {
			t.Errorf("%s: garbage counted in the window: %+v", n, s)
		}
	}

	// A transition replaces the garbage and is shared as usual.
	for _, n := range []string{"bad-state", "bad-type", "valid-looking"} {
		a.breaker(t, n).Trip("after garbage")
		bb := b.breaker(t, n)
		wait.For(t, testWait, n+": b to open", func() bool { return bb.State() == events.Open })
	}
	if n := raw.HLen(ctx, keys("bad-window").window).Val(); n != 0 {
		t.Errorf("the version 1 window holds %d entries, want none (garbage removed, nothing written)", n)
	}
	if ty := raw.Type(ctx, aggKey("bad-agg", core.BreakerConfig{})).Val(); ty != "hash" {
		t.Errorf("the aggregates are a %s", ty)
	}
}

func TestRedisCloseEndsGoroutines(t *testing.T) {
	defer goleak.VerifyNone(t,
		goleak.IgnoreCurrent(),
		goleak.IgnoreTopFunction("github.com/bulwark-go/bulwark/core.(*sysClock).tick"),
	)
	srv := redistest.Start(t)
	a := newInstance(t, srv, "a", core.BreakerConfig{}, RedisConfig{})
	b := newInstance(t, srv, "b", core.BreakerConfig{}, RedisConfig{})
	a.loaded(t, "api")
	b.loaded(t, "api")
	a.breaker(t, "api").Trip("x")
	bb := b.breaker(t, "api")
	wait.For(t, testWait, "b to open", func() bool { return bb.State() == events.Open })
	srv.Kill() // closing while reconnecting must end the goroutines too
	wait.For(t, testWait, "a degraded", func() bool { return !a.s.healthy.Load() })
	a.close()
	b.close()
	_ = a.c.Close()
	_ = b.c.Close()
	// Closed stores refuse new work and leave breakers to themselves.
	if err := a.s.Attach(bb); err == nil {
		t.Error("attach after close")
	}
	if err := a.s.Reset(context.Background(), "api"); err != ErrClosed {
		t.Errorf("reset after close: %v", err)
	}
	if err := a.s.Close(context.Background()); err != nil {
		t.Errorf("second close: %v", err)
	}
	// The deferred goleak check retries for a while: goroutines that are
	// still ending pass, goroutines that never end fail.
}
