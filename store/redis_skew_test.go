package store

import (
	"context"
	"encoding/binary"
	"github.com/bulwark-go/bulwark/events"
	"math"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/internal/redistest"
	"github.com/bulwark-go/bulwark/internal/wait"
)

// skewedClock is a host's clock that is skew off the real one: its wall
// clock reads skew ahead, its monotonic clock and timers run as the real
// ones do.
type skewedClock struct{ skew time.Duration }

func (c skewedClock) Now() time.Time                      { return time.Now().Add(c.skew) }
func (c skewedClock) Nanotime() int64                     { return core.SystemClock().Nanotime() }
func (c skewedClock) NewTimer(d time.Duration) core.Timer { return core.SystemClock().NewTimer(d) }

// Instances whose clocks are 5s behind, right and 5s ahead agree on
// everything they share, since every time compared across instances is
// Redis's: an open time ends on every instance at the same real time,
// whichever tripped the breaker, and on one that learnt of it later; a
// window's calls leave every instance's window a rolling window after
// they were pushed; and a component's hold ends everywhere at the owner's
// lease.
func TestRedisSkewedClocksAgree(t *testing.T) {
	const (
		syncEvery = 200 * time.Millisecond // the bound on every time below
		open      = 3 * time.Second
		lease     = 1500 * time.Millisecond
		window    = 2 * time.Second
		bucket    = window / 10
	)
	srv := redistest.Start(t)
	cfg := core.BreakerConfig{Timeout: open, FailureThreshold: 1000, MinRequestsForRate: 1_000_000, RollingWindow: window}
	// The fourth starts once the breakers are open: it learns their state
	// from its first sync round rather than from messages.
	skews := []time.Duration{-5 * time.Second, 0, 5 * time.Second, -5 * time.Second}
	names := []string{"behind", "right", "ahead", "late"}
	endpoints := []string{"tripped-behind", "tripped-ahead", "held", "win"}
	halfOpen := &halfOpenTimes{at: map[string]time.Time{}}
	var ins []*instance
	var stores []*RedisStore
	start := func() {
		i := len(ins)
		in := newInstance(t, srv, names[i], cfg, RedisConfig{Clock: skewedClock{skews[i]}, SyncInterval: syncEvery, MaxReconnectBackoff: syncEvery})
		for _, ep := range endpoints {
			halfOpen.follow(names[i]+" "+ep, in.breaker(t, ep))
		}
		ins, stores = append(ins, in), append(stores, in.s)
	}
	for range 3 {
		start()
	}
	syncRounds(t, 2, "after loading", stores...)
	right, ahead := ins[1], ins[2]
	// onReal turns a time of instance i's clock into the real one.
	onReal := func(i int, at time.Time) time.Time { return at.Add(-skews[i]) }

	// Traffic: every few milliseconds each breaker is looked at (which
	// moves an Open one whose time is up to HalfOpen, as a call would),
	// and the instances behind and ahead record a success on "win",
	// where the one on time records five failures once. The others'
	// failures in their windows are those five, then none.
	seen := &halfOpenTimes{at: map[string]time.Time{}}
	var mostFailed [3]int64
	stop, stopped := make(chan struct{}), make(chan struct{})
	winStart := time.Now()
	for range 5 {
		right.breaker(t, "win").RecordFailure()
	}
	looked := make([][]*core.Breaker, len(ins)) // [instance][endpoint], the late one left out
	for i, in := range ins {
		for _, ep := range endpoints {
			looked[i] = append(looked[i], in.breaker(t, ep))
		}
	}
	go func() {
		defer close(stopped)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for i, bs := range looked {
				for _, b := range bs[:3] {
					b.Snapshot()
				}
				if i == 1 {
					continue // the one on time
				}
				b := bs[3]
				b.RecordSuccess()
				f := b.Snapshot().WindowFailures
				mostFailed[i] = max(mostFailed[i], f)
				switch _, counted := seen.get(names[i] + " 5"); {
				case f == 5:
					seen.mark(names[i] + " 5")
				case f == 0 && counted:
					seen.mark(names[i] + " 0")
				}
			}
		}
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-stopped
	}()

	// Tripped behind and ahead: every instance opens until the same real
	// time.
	type trip struct {
		endpoint string
		by       int
		from, to time.Time // real times around the trip
	}
	trips := []trip{{endpoint: "tripped-behind", by: 0}, {endpoint: "tripped-ahead", by: 2}}
	for i := range trips {
		tr := &trips[i]
		tr.from = time.Now()
		if !ins[tr.by].breaker(t, tr.endpoint).Trip("skew test") {
			t.Fatalf("%s: trip refused", tr.endpoint)
		}
		tr.to = time.Now()
	}

	start()
	syncRounds(t, 2, "after the late start", stores[3])
	for _, tr := range trips {
		for i, in := range ins {
			b := in.breaker(t, tr.endpoint)
			wait.For(t, testWait, names[i]+" to apply "+tr.endpoint, func() bool { return b.State() != events.Closed })
			s := b.Snapshot()
			if s.State != events.Open {
				t.Errorf("%s: %s %s %v after the trip (real time), want Open for %v", tr.endpoint, names[i], s.State, time.Since(tr.from), open)
				continue
			}
			until := onReal(i, s.OpenUntil)
			t.Logf("%s: %s open until %v after the trip", tr.endpoint, names[i], until.Sub(tr.from))
			if until.Before(tr.from.Add(open-syncEvery)) || until.After(tr.to.Add(open+syncEvery)) {
				t.Errorf("%s: %s open until %v after the trip (real time), want %v ± %v", tr.endpoint, names[i], until.Sub(tr.from), open, syncEvery)
			}
		}
	}

	// The aggregates' buckets are Redis's: every instance's entry names
	// the bucket of Redis's time, whatever its own clock says.
	syncRounds(t, 2, "after the calls", stores...)
	raw := newTestClient(t, srv)
	ctx := context.Background()
	now := raw.Time(ctx).Val()
	entries := raw.HGetAll(ctx, aggKey("win", cfg)).Val()
	for i, name := range names[:3] {
		e := entries[ins[i].s.aggField()]
		if len(e) != 48 {
			t.Errorf("%s's entry in the window aggregates: %q", name, e)
			continue
		}
		idx := int64(math.Float64frombits(binary.LittleEndian.Uint64([]byte(e[40:]))))
		if want := now.UnixMilli() / bucket.Milliseconds(); idx < want-2 || idx > want {
			t.Errorf("%s (clock %v off) pushed into bucket %d, Redis's time is in bucket %d", name, skews[i], idx, want)
		}
	}

	// Held ahead, renewed three times, then left to lapse.
	owner := ahead.breaker(t, "held")
	hold := func() time.Time {
		t.Helper()
		at := time.Now()
		if !owner.Hold("health db", "down", lease) {
			t.Fatal("Hold refused")
		}
		return at
	}
	held := hold()
	for range 3 {
		time.Sleep(lease / 3)
		held = hold()
	}
	// The shared end, on the real clock: the owner's, and a sync interval
	// for its renewals to arrive in.
	shared := onReal(2, owner.Snapshot().HoldUntil).Add(syncEvery)
	// The owner shares the renewal at its next round; the others apply it
	// by message, or at their next round.
	syncRounds(t, 3, "after the last renewal", stores...)
	for i, in := range ins {
		if in == ahead {
			continue
		}
		s := in.breaker(t, "held").Snapshot()
		off := onReal(i, s.HoldUntil).Sub(shared)
		t.Logf("%s holds until %v after the shared end", names[i], off)
		if s.State != events.ForcedOpen || s.HeldBy != "health db" || off.Abs() > syncEvery {
			t.Errorf("%s: %s held by %q until %v after the shared end (real time), want ForcedOpen held by the owner until then ± %v",
				names[i], s.State, s.HeldBy, off, syncEvery)
		}
	}

	for _, ep := range []string{"tripped-behind", "tripped-ahead", "held"} {
		for _, name := range names {
			key := name + " " + ep
			wait.For(t, testWait, key+" to go HalfOpen", func() bool { _, ok := halfOpen.get(key); return ok })
		}
	}
	wait.For(t, testWait, "the five failures to leave the windows", func() bool {
		_, a := seen.get("behind 0")
		_, b := seen.get("ahead 0")
		return a && b
	})
	close(stop)
	<-stopped

	for _, tr := range trips {
		for _, name := range names {
			at, _ := halfOpen.get(name + " " + tr.endpoint)
			t.Logf("%s: %s HalfOpen %v after the trip", tr.endpoint, name, at.Sub(tr.from))
			if at.Before(tr.from.Add(open-syncEvery)) || at.After(tr.to.Add(open+syncEvery)) {
				t.Errorf("%s: %s went HalfOpen %v after the trip (real time), want %v ± %v", tr.endpoint, name, at.Sub(tr.from), open, syncEvery)
			}
		}
	}
	for _, name := range names {
		at, _ := halfOpen.get(name + " held")
		t.Logf("held: %s HalfOpen %v after the last renewal", name, at.Sub(held))
		if at.Before(held.Add(lease-syncEvery)) || at.After(held.Add(lease+syncEvery)) {
			t.Errorf("held: %s went HalfOpen %v after the last renewal (real time), want the lease, %v ± %v", name, at.Sub(held), lease, syncEvery)
		}
	}
	for i, name := range names[:3] {
		if i == 1 {
			continue
		}
		first, _ := seen.get(name + " 5")
		gone, _ := seen.get(name + " 0")
		t.Logf("win: %s counted the five failures from %v to %v", name, first.Sub(winStart), gone.Sub(winStart))
		if mostFailed[i] != 5 {
			t.Errorf("win: %s counted up to %d failures of the others, want 5", name, mostFailed[i])
		}
		// Pushed within a sync interval, they leave Redis's window within a
		// bucket of a window later, and the instance's at its next round.
		if lo, hi := window-bucket-syncEvery, window+3*syncEvery; gone.Sub(winStart) < lo || gone.Sub(winStart) > hi {
			t.Errorf("win: the others' failures left %s's window %v after they were made, want %v to %v", name, gone.Sub(winStart), lo, hi)
		}
	}
}
