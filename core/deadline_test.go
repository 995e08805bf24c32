package core

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bulwark-go/bulwark/internal/wait"
	"pgregory.net/rapid"
)

const slotWidth = time.Duration(1) << wheelShift

func newTestWheel(t *testing.T) (*deadlineWheel, *FakeClock) {
	t.Helper()
	clk := NewFakeClock(t0)
	w := newDeadlineWheel(clk)
	t.Cleanup(func() { stopWheel(t, w, clk) })
	return w, clk
}

// stopWheel checks that nothing is left on w, then moves the clock until
// w's goroutine has seen it idle and stopped.
func stopWheel(t *testing.T, w *deadlineWheel, clk *FakeClock) {
	t.Helper()
	if n := w.pending(); n != 0 {
		t.Errorf("%d contexts left on the wheel", n)
	}
	for i := 0; w.running.Load(); i++ {
		if i > 100*wheelIdleTicks {
			t.Fatal("the wheel's goroutine does not stop when idle")
		}
		clk.WaitForTimers(1, 10*time.Millisecond)
		clk.Advance(slotWidth)
	}
}

// expire moves clk past d and a slot once the wheel's goroutine waits for
// its next tick, so that the tick it then runs sees the time.
func expire(t *testing.T, clk *FakeClock, d time.Duration) {
	t.Helper()
	if !clk.WaitForTimers(1, 5*time.Second) {
		t.Fatal("the wheel's goroutine is not waiting")
	}
	clk.Advance(d + slotWidth)
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// waitClosed waits for ch on real time, for the contexts that are ended by
// another goroutine (the wheel's, or an AfterFunc's).
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: Done not closed", what)
	}
}

func TestDeadlineExpiresLazily(t *testing.T) {
	w, clk := newTestWheel(t)
	ctx := w.withTimeout(context.Background(), 100*time.Millisecond)
	if err := ctx.Err(); err != nil {
		t.Fatalf("new context: %v", err)
	}
	clk.Advance(99 * time.Millisecond)
	if err := ctx.Err(); err != nil {
		t.Fatalf("before the deadline: %v", err)
	}
	clk.Advance(time.Millisecond)
	if err := ctx.Err(); err != context.DeadlineExceeded {
		t.Fatalf("at the deadline: %v, want DeadlineExceeded", err)
	}
	if err := context.Cause(ctx); err != context.DeadlineExceeded {
		t.Errorf("Cause = %v", err)
	}
	// Done asked for late: already closed, and nothing was ever watched.
	if !isClosed(ctx.Done()) {
		t.Error("Done of an expired context is open")
	}
	if w.running.Load() {
		t.Error("an unwatched context started the wheel")
	}
	CancelTimeout(ctx)
	if err := ctx.Err(); err != context.DeadlineExceeded {
		t.Errorf("cancel after expiry changed Err to %v", err)
	}
	if ctx := w.withTimeout(context.Background(), -time.Second); ctx.Err() != context.DeadlineExceeded {
		t.Errorf("a deadline in the past: Err = %v", ctx.Err())
	}
}

// TestDeadlineDoneClosedByWheel checks, on the FakeClock that tests of
// code built on the wheel use, that the wheel closes Done once time passes
// the deadline, with nobody calling Err.
func TestDeadlineDoneClosedByWheel(t *testing.T) {
	w, clk := newTestWheel(t)
	ctx := w.withTimeout(context.Background(), 100*time.Millisecond)
	done := ctx.Done()
	if done != ctx.Done() {
		t.Fatal("Done returns a new channel each time")
	}
	if !w.running.Load() || w.pending() != 1 {
		t.Fatalf("watched context: running %v, pending %d", w.running.Load(), w.pending())
	}
	expire(t, clk, 100*time.Millisecond)
	waitClosed(t, done, "deadline")
	if err := ctx.Err(); err != context.DeadlineExceeded {
		t.Errorf("Err = %v", err)
	}
}

func TestDeadlineErrClosesDone(t *testing.T) {
	w, clk := newTestWheel(t)
	ctx := w.withTimeout(context.Background(), 10*time.Millisecond)
	done := ctx.Done()
	clk.Advance(10 * time.Millisecond)
	// Err sees the deadline before the wheel does, and ends the context
	// for everyone.
	if err := ctx.Err(); err != context.DeadlineExceeded {
		t.Fatalf("Err = %v", err)
	}
	if !isClosed(done) {
		t.Error("Err reported the deadline but Done is open")
	}
}

func TestDeadlineCancel(t *testing.T) {
	w, clk := newTestWheel(t)
	ctx := w.withTimeout(context.Background(), time.Minute)
	done := ctx.Done()
	CancelTimeout(ctx)
	if err := ctx.Err(); err != context.Canceled {
		t.Fatalf("Err after cancel = %v", err)
	}
	if !isClosed(done) {
		t.Fatal("Done open after cancel")
	}
	if n := w.pending(); n != 0 {
		t.Errorf("cancel left %d contexts on the wheel", n)
	}
	CancelTimeout(ctx)
	clk.Advance(time.Hour)
	if err := ctx.Err(); err != context.Canceled {
		t.Errorf("Err after a second cancel and the deadline = %v", err)
	}
	// Unwatched, cancelled before the deadline: Done is closed at once.
	ctx = w.withTimeout(context.Background(), time.Minute)
	CancelTimeout(ctx)
	if !isClosed(ctx.Done()) || ctx.Err() != context.Canceled {
		t.Errorf("unwatched cancel: Err %v", ctx.Err())
	}
	// Cancelled after its deadline passed, unseen: it expired.
	ctx = w.withTimeout(context.Background(), time.Millisecond)
	clk.Advance(time.Millisecond)
	CancelTimeout(ctx)
	if err := ctx.Err(); err != context.DeadlineExceeded {
		t.Errorf("cancel after the deadline: %v, want DeadlineExceeded", err)
	}
	CancelTimeout(context.Background()) // not ours: nothing happens
}

func TestDeadlineParent(t *testing.T) {
	cause := errors.New("client went away")
	t.Run("unwatched", func(t *testing.T) {
		w, _ := newTestWheel(t)
		parent, cancel := context.WithCancelCause(context.Background())
		ctx := w.withTimeout(parent, time.Minute)
		cancel(cause)
		if err := ctx.Err(); err != context.Canceled {
			t.Fatalf("Err = %v, want the parent's", err)
		}
		if err := context.Cause(ctx); err != cause {
			t.Errorf("Cause = %v, want the parent's", err)
		}
		if !isClosed(ctx.Done()) {
			t.Error("Done open after the parent ended")
		}
	})
	t.Run("watched", func(t *testing.T) {
		w, _ := newTestWheel(t)
		parent, cancel := context.WithCancelCause(context.Background())
		ctx := w.withTimeout(parent, time.Minute)
		done := ctx.Done()
		cancel(cause)
		waitClosed(t, done, "parent cancelled")
		if err := ctx.Err(); err != context.Canceled {
			t.Fatalf("Err = %v, want the parent's", err)
		}
		if err := context.Cause(ctx); err != cause {
			t.Errorf("Cause = %v, want the parent's", err)
		}
		if n := w.pending(); n != 0 {
			t.Errorf("%d contexts left on the wheel", n)
		}
	})
	t.Run("expired first", func(t *testing.T) {
		w, clk := newTestWheel(t)
		parent, cancel := context.WithCancelCause(context.Background())
		ctx := w.withTimeout(parent, time.Second)
		done := ctx.Done()
		expire(t, clk, time.Second)
		waitClosed(t, done, "deadline")
		cancel(cause)
		if err := ctx.Err(); err != context.DeadlineExceeded {
			t.Errorf("Err = %v, want DeadlineExceeded", err)
		}
		if err := context.Cause(ctx); err != context.DeadlineExceeded {
			t.Errorf("Cause = %v, want DeadlineExceeded, not the parent's later cause", err)
		}
	})
	t.Run("parent already ended", func(t *testing.T) {
		w, _ := newTestWheel(t)
		parent, cancel := context.WithCancel(context.Background())
		cancel()
		ctx := w.withTimeout(parent, time.Minute)
		if !isClosed(ctx.Done()) || ctx.Err() != context.Canceled {
			t.Errorf("child of an ended parent: Err %v", ctx.Err())
		}
	})
}

func TestDeadlineDeadlineAndValue(t *testing.T) {
	w, _ := newTestWheel(t)
	type key struct{}
	parent := context.WithValue(context.Background(), key{}, "v")
	ctx := w.withTimeout(parent, 100*time.Millisecond)
	if d, ok := ctx.Deadline(); !ok || !d.Equal(t0.Add(100*time.Millisecond)) {
		t.Errorf("Deadline = %v, %v; want %v", d, ok, t0.Add(100*time.Millisecond))
	}
	if v := ctx.Value(key{}); v != "v" {
		t.Errorf("Value = %v", v)
	}
	early, cancel := context.WithDeadline(context.Background(), t0.Add(50*time.Millisecond))
	defer cancel()
	ctx = w.withTimeout(early, time.Second)
	if d, _ := ctx.Deadline(); !d.Equal(t0.Add(50 * time.Millisecond)) {
		t.Errorf("Deadline under an earlier parent = %v", d)
	}
	if s := ctx.(*deadlineCtx).String(); s == "" {
		t.Error("no String")
	}
	CancelTimeout(ctx)
}

// TestDeadlineDerived checks contexts derived from a deadline context:
// they end with it, through its AfterFunc, and stopping an AfterFunc keeps
// it from running.
func TestDeadlineDerived(t *testing.T) {
	w, clk := newTestWheel(t)
	ctx := w.withTimeout(context.Background(), 50*time.Millisecond)
	child, cancelChild := context.WithCancel(ctx)
	defer cancelChild()
	ran := make(chan struct{})
	context.AfterFunc(ctx, func() { close(ran) })
	stopped := false
	stop := context.AfterFunc(ctx, func() { stopped = true })
	if !stop() {
		t.Error("stop before the end returned false")
	}
	if stop() {
		t.Error("a second stop returned true")
	}
	expire(t, clk, 50*time.Millisecond)
	waitClosed(t, child.Done(), "derived context")
	waitClosed(t, ran, "AfterFunc")
	if err := child.Err(); err != context.DeadlineExceeded {
		t.Errorf("derived Err = %v", err)
	}
	if err := context.Cause(child); err != context.DeadlineExceeded {
		t.Errorf("derived Cause = %v", err)
	}
	if stopped {
		t.Error("a stopped AfterFunc ran")
	}
	// AfterFunc on an ended context runs at once.
	again := make(chan struct{})
	if stop := ctx.(*deadlineCtx).AfterFunc(func() { close(again) }); stop() {
		t.Error("stop on an ended context returned true")
	}
	waitClosed(t, again, "AfterFunc after the end")
}

// TestDeadlineStress makes, watches, derives from, cancels and expires
// deadlines from many goroutines while the clock moves, under -race, and
// checks every context's end.
func TestDeadlineStress(t *testing.T) {
	w, clk := newTestWheel(t)
	stop := make(chan struct{})
	var advancer sync.WaitGroup
	advancer.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				clk.Advance(time.Millisecond)
			}
		}
	})
	type made struct {
		ctx      context.Context
		when     int64
		canceled bool // cancelled by us before its deadline
		derived  context.Context
		stopDer  context.CancelFunc
		ran      *atomic.Bool
	}
	var wg sync.WaitGroup
	results := make([][]made, 8)
	for g := range results {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 500 {
				d := time.Duration(r.IntN(60)+1) * time.Millisecond
				ctx := w.withTimeout(context.Background(), d)
				m := made{ctx: ctx, when: ctx.(*deadlineCtx).when}
				switch r.IntN(4) {
				case 0:
					_ = ctx.Done()
				case 1:
					m.derived, m.stopDer = context.WithCancel(ctx)
				case 2:
					m.ran = new(atomic.Bool)
					context.AfterFunc(ctx, func() { m.ran.Store(true) })
				}
				if r.IntN(3) == 0 {
					before := clk.Nanotime() < m.when
					CancelTimeout(ctx)
					m.canceled = before && ctx.Err() == context.Canceled
				}
				_ = ctx.Err()
				results[g] = append(results[g], m)
			}
		})
	}
	wg.Wait()
	// The clock keeps moving until every context has ended.
	defer advancer.Wait()
	defer close(stop)
	for _, rs := range results {
		for _, m := range rs {
			waitClosed(t, m.ctx.Done(), "stress")
			err := m.ctx.Err()
			switch {
			case m.canceled && err != context.Canceled:
				t.Fatalf("cancelled before its deadline, Err = %v", err)
			case !m.canceled && err != context.DeadlineExceeded && err != context.Canceled:
				t.Fatalf("Err = %v", err)
			}
			if m.derived != nil {
				waitClosed(t, m.derived.Done(), "derived")
				if m.derived.Err() != err {
					t.Fatalf("derived Err %v, parent's %v", m.derived.Err(), err)
				}
				m.stopDer()
			}
		}
	}
	for _, rs := range results {
		for _, m := range rs {
			if m.ran != nil {
				wait.For(t, 5*time.Second, "AfterFunc to run", m.ran.Load)
			}
		}
	}
}

// TestDeadlineSystemWheelStops uses a Manager's WithTimeout on the system
// clock for real and checks that the shared wheel's goroutine stops once
// idle.
func TestDeadlineSystemWheelStops(t *testing.T) {
	m := newBenchManager(t)
	if m.deadlines != systemDeadlines {
		t.Fatal("a Manager on SystemClock has a wheel of its own")
	}
	ctx := m.WithTimeout(context.Background(), 20*time.Millisecond)
	other := m.WithTimeout(context.Background(), time.Hour)
	_ = other.Done()
	waitClosed(t, ctx.Done(), "system wheel")
	if err := ctx.Err(); err != context.DeadlineExceeded {
		t.Errorf("Err = %v", err)
	}
	CancelTimeout(other)
	wait.For(t, 5*time.Second, "the system wheel's goroutine to stop", func() bool {
		return !systemDeadlines.running.Load()
	})
}

// bubbleClock is a Clock on the time package, which a synctest bubble
// fakes.
type bubbleClock struct{ start time.Time }

func (c bubbleClock) Now() time.Time                 { return time.Now() }
func (c bubbleClock) Nanotime() int64                { return int64(time.Since(c.start)) }
func (c bubbleClock) NewTimer(d time.Duration) Timer { return sysTimer{time.NewTimer(d)} }

// TestDeadlineSynctest runs the wheel on the time of a synctest bubble:
// Done closes within a slot after the deadline and not before, deadlines
// laps ahead wait their turn, and the goroutine stops once idle.
func TestDeadlineSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newDeadlineWheel(bubbleClock{time.Now()})
		for _, d := range []time.Duration{
			time.Millisecond, 10 * time.Millisecond, time.Second,
			2*wheelSlots*slotWidth + 10*time.Millisecond, // two laps and a bit
		} {
			start := time.Now()
			ctx := w.withTimeout(t.Context(), d)
			done := ctx.Done()
			time.Sleep(d - time.Nanosecond)
			synctest.Wait()
			if isClosed(done) {
				t.Fatalf("%v deadline: Done closed early", d)
			}
			<-done
			if late := time.Since(start) - d; late < 0 || late > slotWidth {
				t.Errorf("%v deadline: Done closed %v late", d, late)
			}
			if err := ctx.Err(); err != context.DeadlineExceeded {
				t.Errorf("Err = %v", err)
			}
		}
		long := w.withTimeout(t.Context(), time.Hour)
		_ = long.Done()
		time.Sleep(time.Second)
		CancelTimeout(long)
		time.Sleep(2 * wheelIdleTicks * slotWidth)
		synctest.Wait()
		if w.running.Load() {
			t.Error("the wheel's goroutine runs on with nothing pending")
		}
	})
}

// TestWheelStripeProperties inserts, removes and expires entries in one
// stripe in random order, with clock jumps of up to several laps, and
// checks each entry is expired exactly once, never before its deadline and
// in the first collect at or after the start of its slot.
func TestWheelStripeProperties(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		var st wheelStripe
		now := rapid.Int64Range(0, 1<<40).Draw(rt, "start")
		st.cursor = now >> wheelShift
		type entry struct {
			x       *wheelEntry
			removed bool
			expired bool
		}
		var live []*entry
		for range rapid.IntRange(1, 300).Draw(rt, "steps") {
			switch rapid.IntRange(0, 3).Draw(rt, "op") {
			case 0, 1:
				when := now + rapid.Int64Range(-int64(slotWidth), int64(3*wheelSlots)*int64(slotWidth)).Draw(rt, "in")
				e := &entry{x: &wheelEntry{when: when}}
				st.insert(e.x)
				live = append(live, e)
			case 2:
				if len(live) == 0 {
					continue
				}
				e := live[rapid.IntRange(0, len(live)-1).Draw(rt, "victim")]
				if !e.removed && !e.expired {
					st.mu.Lock()
					st.unlink(e.x)
					st.mu.Unlock()
					e.removed = true
				}
			case 3:
				now += rapid.Int64Range(0, int64(2*wheelSlots)*int64(slotWidth)).Draw(rt, "advance")
				due, left := st.collect(now>>wheelShift, nil)
				got := map[*wheelEntry]bool{}
				for _, c := range due {
					if got[c] {
						rt.Fatalf("expired twice in one collect")
					}
					got[c] = true
				}
				want := 0
				for _, e := range live {
					if e.removed || e.expired {
						continue
					}
					slotStart := e.x.slot << wheelShift
					due := now >= slotStart
					if got[e.x] != due {
						rt.Fatalf("entry due at %d (slot start %d), now %d: expired %v", e.x.when, slotStart, now, got[e.x])
					}
					if due {
						if now < e.x.when {
							rt.Fatalf("expired at %d before its deadline %d", now, e.x.when)
						}
						e.expired = true
					} else {
						want++
					}
				}
				if len(got) != len(due) || left != want {
					rt.Fatalf("collect returned %d (%d left), model says %d left", len(due), left, want)
				}
			}
		}
	})
}

func TestDeadlineAllocations(t *testing.T) {
	m := newBenchManager(t)
	parent := context.Background()
	if a := testing.AllocsPerRun(1000, func() {
		ctx := m.WithTimeout(parent, time.Second)
		_ = ctx.Err()
		CancelTimeout(ctx)
	}); a > 1 {
		t.Errorf("WithTimeout and CancelTimeout allocate %v times, want 1", a)
	}
}

// An alarm fires once its time has come on the Manager's clock, allocates
// nothing, and a stopped one never fires.
func TestAlarm(t *testing.T) {
	clk := NewFakeClock(t0)
	m, _ := NewManager(ManagerConfig{Clock: clk})
	defer stopWheel(t, m.deadlines, clk)
	fired := make(chan struct{}, 2)
	f := func() { fired <- struct{}{} }
	var a Alarm
	m.SetAlarm(&a, 50*time.Millisecond, f)
	clk.Advance(40 * time.Millisecond)
	select {
	case <-fired:
		t.Fatal("fired early")
	default:
	}
	for range 10 {
		if !clk.WaitForTimers(1, time.Second) {
			t.Fatal("the wheel is not ticking")
		}
		clk.Advance(5 * time.Millisecond)
		select {
		case <-fired:
			if a.Stop() {
				t.Fatal("Stop after firing reported true")
			}
			goto stopped
		default:
		}
	}
	t.Fatal("never fired")
stopped:
	m.SetAlarm(&a, time.Millisecond, f)
	if !a.Stop() {
		t.Fatal("Stop before firing reported false")
	}
	clk.Advance(time.Second)
	if n := testing.AllocsPerRun(100, func() { m.SetAlarm(&a, time.Hour, f); a.Stop() }); n != 0 {
		t.Fatalf("SetAlarm+Stop allocates %v times", n)
	}
	select {
	case <-fired:
		t.Fatal("a stopped alarm fired")
	default:
	}
}
