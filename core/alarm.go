package core

import (
	"context"
	"time"
)

// WithTimeout returns a copy of parent that ends d from now, with
// context.DeadlineExceeded, or when parent ends, with parent's error. It is
// what context.WithTimeout does at a fraction of the cost, for the request
// path: it makes no runtime timer and allocates once. It runs on the
// Manager's clock, so that the deadlines of its endpoints move with a
// FakeClock in tests.
//
// The deadline is coarse: Err reports it to the millisecond, and the Done
// channel is closed within about 5ms of it, by a wheel of deadlines (one
// per clock: every Manager on SystemClock shares the process's), whose one
// goroutine runs only while some context it holds has a pending deadline
// and someone waits on that context's Done. The context costs nothing more
// until something calls its Done (or derives a cancelable context from
// it): only then is the channel made and the context put on the wheel, and
// only then does it follow parent's end by itself (before that, Err checks
// parent when called).
//
// Call CancelTimeout(ctx) once the work it bounds is done, as the cancel
// function of context.WithTimeout is called: that ends the context with
// context.Canceled and takes it off the wheel. A context never cancelled
// holds what it took only until its deadline.
//
// context.Cause of the context is its Err, or parent's cause when it ended
// because parent did.
func (m *Manager) WithTimeout(parent context.Context, d time.Duration) context.Context {
	return m.deadlines.withTimeout(parent, d)
}

// Alarm runs a function once its time comes, on the Manager's wheel of
// deadlines: a coarse timer (it fires within about 5ms of its time) that
// allocates nothing, for state that is reused from call to call, such as
// the HTTP middleware's per-request record. The zero Alarm is ready to
// set. Set and Stop must not run concurrently with each other; the
// function runs on the wheel's goroutine and must return quickly.
type Alarm struct{ e wheelEntry }

// SetAlarm makes a run f once d has passed on the Manager's clock, unless
// it is stopped first. An Alarm still set must be stopped before it is set
// again.
func (m *Manager) SetAlarm(a *Alarm, d time.Duration, f func()) {
	a.e.when = m.clock.Nanotime() + int64(max(d, 0))
	a.e.fire = f
	m.deadlines.addEntry(&a.e)
}

// Stop keeps the alarm from firing and reports whether it did: false once
// its function has started (or was never set).
func (a *Alarm) Stop() bool { return removeEntry(&a.e) }
