package core

import (
	"testing"
	"time"
)

func TestSystemClockIsMonotonicAndCoarse(t *testing.T) {
	c := SystemClock()
	a := c.Nanotime()
	time.Sleep(5 * time.Millisecond) // real time must pass for a real clock
	b := c.Nanotime()
	if b < a+int64(3*time.Millisecond) {
		t.Fatalf("coarse clock moved %v in 5ms", time.Duration(b-a))
	}
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
