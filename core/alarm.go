package core

import (
	"context"
	"time"
)

// WithTimeout is the package's WithTimeout on the Manager's clock, so that
// the deadlines of its endpoints move with a FakeClock in tests.
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
