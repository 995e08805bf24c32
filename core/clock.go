package core

import (
	"sync"
	"sync/atomic"
	"time"
)

// Clock is the source of time for every time-based rule in Bulwark.
//
// Breakers, bulkheads, retries and SLO trackers all take a Clock so that tests
// can drive time with a FakeClock instead of sleeping.
type Clock interface {
	// Now returns the current wall-clock time.
	Now() time.Time
	// Nanotime returns monotonic nanoseconds from an arbitrary, fixed origin.
	// It may be coarse (about a millisecond) and must be cheap: the request
	// path reads it.
	Nanotime() int64
	// NewTimer returns a timer that fires once, d from now.
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer made by a Clock.
type Timer interface {
	// C delivers the time once the timer fires.
	C() <-chan time.Time
	// Stop prevents the timer from firing. It reports whether it stopped
	// the timer before it fired.
	Stop() bool
}

// SystemClock returns the clock backed by the operating system.
//
// Its Nanotime is coarse: one goroutine refreshes a shared reading every
// millisecond while anything reads it, and exits after about a second with no
// readers. A read costs about a nanosecond instead of the tens of nanoseconds
// of time.Now.
func SystemClock() Clock { return &systemClock }

// coarseResolution is how often the system clock's Nanotime is refreshed.
const coarseResolution = time.Millisecond

var (
	systemClock = sysClock{}
	processBase = time.Now()
)

type sysClock struct {
	_   [64]byte
	now atomic.Int64
	// mode is modeRead while the ticker runs and someone read since its last
	// idle check, modeUnread while it runs unread, modeStopped otherwise.
	mode atomic.Int32
	_    [56]byte
	mu   sync.Mutex
}

const (
	modeStopped int32 = iota
	modeRead
	modeUnread
)

func preciseNanotime() int64 { return int64(time.Since(processBase)) }

func (c *sysClock) Now() time.Time { return time.Now() }

func (c *sysClock) NewTimer(d time.Duration) Timer { return sysTimer{time.NewTimer(d)} }

func (c *sysClock) Nanotime() int64 {
	if c.mode.Load() != modeRead {
		c.wake()
	}
	return c.now.Load()
}

// wake marks the reading as used and starts the ticker when it is stopped.
func (c *sysClock) wake() {
	for {
		switch c.mode.Load() {
		case modeRead:
			return
		case modeUnread:
			if c.mode.CompareAndSwap(modeUnread, modeRead) {
				return
			}
		case modeStopped:
			c.mu.Lock()
			if c.mode.Load() == modeStopped {
				c.store(preciseNanotime())
				c.mode.Store(modeRead)
				go c.tick()
			}
			c.mu.Unlock()
			return
		}
	}
}

// store keeps the reading monotonic even when a restart races a reader.
func (c *sysClock) store(t int64) {
	for {
		old := c.now.Load()
		if t <= old || c.now.CompareAndSwap(old, t) {
			return
		}
	}
}

func (c *sysClock) tick() {
	t := time.NewTicker(coarseResolution)
	defer t.Stop()
	const idleChecks = int(time.Second / coarseResolution)
	for n := 1; ; n++ {
		<-t.C
		c.store(preciseNanotime())
		if n%idleChecks != 0 {
			continue
		}
		if c.mode.CompareAndSwap(modeRead, modeUnread) {
			continue
		}
		// Nobody read during the last second: stop until the next reader.
		c.mu.Lock()
		if c.mode.CompareAndSwap(modeUnread, modeStopped) {
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
	}
}

type sysTimer struct{ t *time.Timer }

func (t sysTimer) C() <-chan time.Time { return t.t.C }
func (t sysTimer) Stop() bool          { return t.t.Stop() }

// FakeClock is a Clock that moves only when told to. It is safe for
// concurrent use and meant for tests, including tests of code built on
// Bulwark.
type FakeClock struct {
	nanos atomic.Int64

	mu     sync.Mutex
	base   time.Time
	timers []*fakeTimer
	notify chan struct{}
}

// NewFakeClock returns a FakeClock whose Now starts at start.
func NewFakeClock(start time.Time) *FakeClock {
	return &FakeClock{base: start, notify: make(chan struct{})}
}

// Now returns the fake wall-clock time.
func (f *FakeClock) Now() time.Time {
	return f.base.Add(time.Duration(f.nanos.Load()))
}

// Nanotime returns the nanoseconds advanced since the clock was made.
func (f *FakeClock) Nanotime() int64 { return f.nanos.Load() }

// Advance moves the clock forward by d and fires every timer that is due.
func (f *FakeClock) Advance(d time.Duration) {
	if d < 0 {
		d = 0
	}
	f.mu.Lock()
	now := f.nanos.Add(int64(d))
	kept := f.timers[:0]
	var due []*fakeTimer
	for _, t := range f.timers {
		if t.at <= now {
			due = append(due, t)
		} else {
			kept = append(kept, t)
		}
	}
	clear(f.timers[len(kept):])
	f.timers = kept
	f.mu.Unlock()
	wall := f.base.Add(time.Duration(now))
	for _, t := range due {
		select {
		case t.c <- wall:
		default:
		}
	}
}

// Timers returns how many timers are waiting to fire.
func (f *FakeClock) Timers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.timers)
}

// WaitForTimers blocks until at least n timers are waiting, so that a test
// can advance time only after the code under test has started to wait. It
// gives up after the real-time limit and reports whether n was reached.
func (f *FakeClock) WaitForTimers(n int, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for {
		f.mu.Lock()
		got, ch := len(f.timers), f.notify
		f.mu.Unlock()
		if got >= n {
			return true
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return false
		}
		t := time.NewTimer(wait)
		select {
		case <-ch:
			t.Stop()
		case <-t.C:
		}
	}
}

// NewTimer returns a timer that fires when the clock has advanced by d.
func (f *FakeClock) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{clock: f, c: make(chan time.Time, 1)}
	f.mu.Lock()
	t.at = f.nanos.Load() + int64(d)
	if d <= 0 {
		f.mu.Unlock()
		t.c <- f.Now()
		return t
	}
	f.timers = append(f.timers, t)
	close(f.notify)
	f.notify = make(chan struct{})
	f.mu.Unlock()
	return t
}

type fakeTimer struct {
	clock *FakeClock
	at    int64
	c     chan time.Time
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	f := t.clock
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, x := range f.timers {
		if x == t {
			f.timers = append(f.timers[:i], f.timers[i+1:]...)
			return true
		}
	}
	return false
}
