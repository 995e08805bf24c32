package core

import (
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/internal/wait"
)

// The system clock's coarse reading follows real time: it never goes back,
// never runs ahead of the precise reading it is refreshed from, and passes
// a point of real time soon after it. How soon depends on the scheduler,
// so the test waits rather than bounds it.
func TestSystemClockIsMonotonicAndCoarse(t *testing.T) {
	c := SystemClock()
	last := c.Nanotime()
	target := preciseNanotime() + int64(5*time.Millisecond)
	wait.For(t, 10*time.Second, "the coarse clock to pass real time 5ms on", func() bool {
		now := c.Nanotime()
		if now < last {
			t.Fatalf("the coarse clock went back from %d to %d", last, now)
		}
		if p := preciseNanotime(); now > p {
			t.Fatalf("the coarse clock reads %d, ahead of real time %d", now, p)
		}
		last = now
		return now >= target
	})
}

func TestFakeClockTimers(t *testing.T) {
	f := NewFakeClock(t0)
	t1 := f.NewTimer(time.Second)
	t2 := f.NewTimer(2 * time.Second)
	if !f.WaitForTimers(2, time.Second) || f.Timers() != 2 {
		t.Fatal("timers not registered")
	}
	if !t2.Stop() || t2.Stop() {
		t.Fatal("Stop should report true once")
	}
	f.Advance(time.Second - 1)
	select {
	case <-t1.C():
		t.Fatal("a timer fired before it was due")
	default:
	}
	f.Advance(1)
	select {
	case at := <-t1.C():
		if !at.Equal(t0.Add(time.Second)) {
			t.Fatalf("fired at %v", at)
		}
	default:
		t.Fatal("due timer did not fire")
	}
	if f.Timers() != 0 {
		t.Fatal("fired timer still pending")
	}
	if f.WaitForTimers(1, 10*time.Millisecond) {
		t.Fatal("WaitForTimers reported a timer that is not there")
	}
	if d := f.NewTimer(0); len(d.C()) != 1 {
		t.Fatal("a zero timer fires at once")
	}
}
