package core

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// CancelTimeout ends ctx, a context (*Manager).WithTimeout returned, with
// context.Canceled (context.DeadlineExceeded once its deadline has
// passed), and releases what it holds. Later calls, and calls for any
// other context, do nothing.
func CancelTimeout(ctx context.Context) {
	if c, ok := ctx.(*deadlineCtx); ok {
		c.cancel()
	}
}

// The wheel's slots are 2^22ns (about 4.2ms) wide, and a lap of them
// spans about 4.3s; a deadline further off waits in its slot for as many
// laps as it takes.
const (
	wheelShift = 22
	wheelSlots = 1024
	wheelMask  = wheelSlots - 1
	// wheelIdleTicks is how many ticks with nothing pending the wheel's
	// goroutine waits before it stops.
	wheelIdleTicks  = 8
	maxWheelStripes = 16
)

// systemDeadlines is the wheel on SystemClock that every Manager on
// SystemClock shares.
var systemDeadlines = newDeadlineWheel(SystemClock())

// deadlineWheel cancels the contexts it holds when their deadline passes:
// a ring of time slots, each a list of contexts due in it, split into
// stripes with a lock each. Adding and removing a context is O(1) under one
// stripe's lock. One goroutine ticks once a slot while any context is
// held, and stops when none has been held for a few ticks.
//
// A wheel runs on one Clock: a FakeClock moves it in tests. Code that runs
// inside a testing/synctest bubble needs a wheel made inside the bubble, on
// a clock of the bubble's time.
type deadlineWheel struct {
	clock Clock
	// A clock Nanotime n is the wall time wall.Add(n - mono).
	wall    time.Time
	mono    int64
	stripes []wheelStripe
	running atomic.Bool
}

// wheelStripe is one lock's worth of a wheel.
type wheelStripe struct {
	mu     sync.Mutex
	slots  *[wheelSlots]*wheelEntry // made on first use
	cursor int64                    // every slot up to this one has been expired
	count  int                      // contexts held
	_      [32]byte
}

// newDeadlineWheel returns a wheel on clock. It starts no goroutine until a
// context is put on it.
func newDeadlineWheel(clock Clock) *deadlineWheel {
	w := &deadlineWheel{clock: clock}
	if clock == SystemClock() {
		// Its Nanotime is time since processBase; asking for it now would
		// start its ticker.
		w.wall = processBase
	} else {
		w.wall, w.mono = clock.Now(), clock.Nanotime()
	}
	n := 1
	for n < runtime.GOMAXPROCS(0) && n < maxWheelStripes {
		n *= 2
	}
	w.stripes = make([]wheelStripe, n)
	return w
}

// withTimeout is (*Manager).WithTimeout on w's clock.
func (w *deadlineWheel) withTimeout(parent context.Context, d time.Duration) context.Context {
	if parent == nil {
		parent = context.Background()
	}
	now := w.clock.Nanotime()
	when := int64(math.MaxInt64)
	if int64(d) < math.MaxInt64-now {
		when = now + max(int64(d), math.MinInt64/2)
	}
	// A deadline already past is seen by the first Err.
	return &deadlineCtx{parent: parent, w: w, when: when}
}

// wheelEntry is what the wheel holds: something due at a clock Nanotime,
// and what to do then. It is embedded in what it stands for (a watched
// context, an Alarm), so that putting it on the wheel allocates nothing.
type wheelEntry struct {
	when int64
	fire func() // run by the wheel's goroutine once when is past
	// The stripe it was put on (nil if never), and, under that stripe's
	// lock, whether it is still on it, in which slot and list.
	stripe     *wheelStripe
	on         bool
	slot       int64
	prev, next *wheelEntry
}

// add puts x on the wheel, due when its context's deadline passes. Called
// with x.mu held.
func (w *deadlineWheel) add(x *dlWatch) { w.addEntry(&x.entry) }

// addEntry puts e on the wheel and makes sure its goroutine runs.
func (w *deadlineWheel) addEntry(e *wheelEntry) {
	w.stripes[rand.Uint32()&uint32(len(w.stripes)-1)].insert(e)
	// The count insert made and this load pair with the goroutine's store
	// of running and its count of what is pending: either it sees x, or
	// this sees it stopped and starts another.
	if !w.running.Load() && w.running.CompareAndSwap(false, true) {
		go w.run()
	}
}

// insert links x into the slot its deadline falls in: the first slot that
// starts at or after the deadline, which is expired once the clock has
// reached its start, or the next one to expire if that one is past.
func (st *wheelStripe) insert(x *wheelEntry) {
	slot := x.when >> wheelShift
	if x.when&(1<<wheelShift-1) != 0 {
		slot++ // rounding up this way cannot overflow
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.slots == nil {
		st.slots = new([wheelSlots]*wheelEntry)
	}
	slot = max(slot, st.cursor+1)
	head := &st.slots[slot&wheelMask]
	x.stripe, x.on, x.slot, x.prev, x.next = st, true, slot, nil, *head
	if *head != nil {
		(*head).prev = x
	}
	*head = x
	st.count++
}

// remove takes x off the wheel if it is on it. Called with x.mu held.
func (w *deadlineWheel) remove(x *dlWatch) { removeEntry(&x.entry) }

// removeEntry takes e off the wheel and reports whether it was on it: once
// the wheel has taken it to fire, it is not. The caller serialises it with
// the entry's insert.
func removeEntry(e *wheelEntry) bool {
	st := e.stripe // set by insert, changed only by a later insert
	if st == nil {
		return false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if !e.on {
		return false
	}
	st.unlink(e)
	return true
}

// unlink takes x out of its slot's list. Called with st.mu held.
func (st *wheelStripe) unlink(x *wheelEntry) {
	if x.prev != nil {
		x.prev.next = x.next
	} else {
		st.slots[x.slot&wheelMask] = x.next
	}
	if x.next != nil {
		x.next.prev = x.prev
	}
	x.prev, x.next, x.on = nil, nil, false
	st.count--
}

// collect unlinks every entry due by the end of slot now into due, and
// returns how many entries the stripe still holds.
func (st *wheelStripe) collect(now int64, due []*wheelEntry) ([]*wheelEntry, int) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.count == 0 {
		st.cursor = max(st.cursor, now)
		return due, 0
	}
	from := st.cursor + 1
	if now-from >= wheelSlots {
		from = now - wheelSlots + 1 // one lap visits every list
	}
	for s := from; s <= now; s++ {
		for x := st.slots[s&wheelMask]; x != nil; {
			next := x.next
			if x.slot <= now {
				st.unlink(x)
				due = append(due, x)
			}
			x = next
		}
	}
	st.cursor = max(st.cursor, now)
	return due, st.count
}

// pending returns how many contexts the wheel holds.
func (w *deadlineWheel) pending() int {
	n := 0
	for i := range w.stripes {
		st := &w.stripes[i]
		st.mu.Lock()
		n += st.count
		st.mu.Unlock()
	}
	return n
}

// run is the wheel's goroutine: once a slot, it ends the contexts whose
// deadline has passed. It returns once nothing has been pending for
// wheelIdleTicks ticks.
func (w *deadlineWheel) run() {
	var due []*wheelEntry
	idle := 0
	for {
		now := w.clock.Nanotime()
		slot := now >> wheelShift
		pending := 0
		for i := range w.stripes {
			var n int
			due, n = w.stripes[i].collect(slot, due)
			pending += n
		}
		for i, e := range due {
			e.fire()
			due[i] = nil
		}
		due = due[:0]
		if pending > 0 {
			idle = 0
		} else if idle++; idle >= wheelIdleTicks {
			w.running.Store(false)
			if w.pending() == 0 || !w.running.CompareAndSwap(false, true) {
				return
			}
			idle = 0
		}
		t := w.clock.NewTimer(time.Duration((slot+1)<<wheelShift - now))
		<-t.C()
	}
}

// The states of a deadlineCtx. It starts live; Done or AfterFunc make it
// watched (on the wheel, with a channel); the others are ends.
const (
	dlLive int32 = iota
	dlWatched
	dlCanceled
	dlExpired
	dlParentDone
)

// deadlineCtx is the context WithTimeout returns. Until someone watches
// it, it is these few words: Err compares the clock with the deadline and
// asks the parent.
type deadlineCtx struct {
	parent context.Context
	w      *deadlineWheel
	when   int64 // the w.clock Nanotime of the deadline
	state  atomic.Int32
	watch  atomic.Pointer[dlWatch] // set by the first Done or AfterFunc
}

// dlWatch is what a watched context adds: its channel, its place on the
// wheel, its hook on its parent and the functions to run when it ends.
type dlWatch struct {
	done chan struct{}
	c    *deadlineCtx

	mu         sync.Mutex // guards the fields below and the moves out of dlWatched
	stopParent func() bool
	afters     []*dlAfter

	entry wheelEntry // its place on the wheel
}

type dlAfter struct{ f func() }

// closedDone is the Done channel of contexts that ended before anyone
// asked for one.
var closedDone = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Deadline returns the deadline, or parent's when that is earlier.
func (c *deadlineCtx) Deadline() (time.Time, bool) {
	d := c.w.wall.Add(time.Duration(c.when - c.w.mono))
	if pd, ok := c.parent.Deadline(); ok && pd.Before(d) {
		return pd, true
	}
	return d, true
}

// Err returns nil while the context lives, then why it ended. A deadline
// that has passed is seen here to the millisecond, whether or not the
// wheel has got to it; when both the deadline and parent's end are first
// seen here, the deadline wins.
func (c *deadlineCtx) Err() error {
	if st := c.state.Load(); st >= dlCanceled {
		return c.errOf(st)
	}
	if c.w.clock.Nanotime() >= c.when {
		return c.end(dlExpired)
	}
	if c.parent.Err() != nil {
		return c.end(dlParentDone)
	}
	return nil
}

func (c *deadlineCtx) errOf(st int32) error {
	switch st {
	case dlCanceled:
		return context.Canceled
	case dlExpired:
		return context.DeadlineExceeded
	case dlParentDone:
		return c.parent.Err()
	}
	return nil
}

// Done returns a channel closed when the context ends. The first call
// makes it and puts the context on the wheel and on its parent.
func (c *deadlineCtx) Done() <-chan struct{} {
	if x := c.watch.Load(); x != nil {
		return x.done
	}
	if c.Err() != nil {
		return closedDone
	}
	x := &dlWatch{done: make(chan struct{}), c: c}
	x.entry.when, x.entry.fire = c.when, func() { c.end(dlExpired) }
	if !c.watch.CompareAndSwap(nil, x) {
		return c.watch.Load().done
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if !c.state.CompareAndSwap(dlLive, dlWatched) {
		// Ended since the check above, unwatched: nobody else will close it.
		close(x.done)
		return x.done
	}
	c.w.add(x)
	if c.parent.Done() != nil {
		x.stopParent = context.AfterFunc(c.parent, x.parentDone)
	}
	return x.done
}

func (x *dlWatch) parentDone() {
	c := x.c
	if c.w.clock.Nanotime() >= c.when {
		c.end(dlExpired)
	} else {
		c.end(dlParentDone)
	}
}

// Value returns parent's value for key. The context package asks for the
// nearest of its own cancelable contexts to find a cause: that is
// parent's only when this context ended because parent did.
func (c *deadlineCtx) Value(key any) any {
	if key == cancelCtxKey {
		if c.Err() != nil && c.state.Load() == dlParentDone {
			return c.parent.Value(key)
		}
		return nil
	}
	return c.parent.Value(key)
}

// AfterFunc arranges for f to run in its own goroutine once the context
// ends, as context.AfterFunc does; stop keeps f from running if it has not
// started. The context package uses it for contexts derived from this one,
// so that they need no goroutine of their own.
func (c *deadlineCtx) AfterFunc(f func()) (stop func() bool) {
	c.Done()
	x := c.watch.Load()
	if x != nil {
		x.mu.Lock()
		if c.state.Load() == dlWatched {
			a := &dlAfter{f: f}
			x.afters = append(x.afters, a)
			x.mu.Unlock()
			return func() bool {
				x.mu.Lock()
				defer x.mu.Unlock()
				for i, b := range x.afters {
					if b == a {
						x.afters = append(x.afters[:i], x.afters[i+1:]...)
						return true
					}
				}
				return false
			}
		}
		x.mu.Unlock()
	}
	go f()
	return func() bool { return false }
}

func (c *deadlineCtx) String() string {
	d, _ := c.Deadline()
	return fmt.Sprintf("%v.WithTimeout(%s [%s])", c.parent, d, time.Until(d).Round(time.Millisecond))
}

// cancel ends the context with Canceled, or DeadlineExceeded when the
// deadline has passed.
func (c *deadlineCtx) cancel() {
	if c.w.clock.Nanotime() >= c.when {
		c.end(dlExpired)
	} else {
		c.end(dlCanceled)
	}
}

// end moves a living context to state st and returns its error, which is
// that of whoever ended it first.
func (c *deadlineCtx) end(st int32) error {
	for {
		switch cur := c.state.Load(); cur {
		case dlLive:
			// Nothing watches it: nothing to close or take off the wheel.
			if c.state.CompareAndSwap(dlLive, st) {
				return c.errOf(st)
			}
		case dlWatched:
			x := c.watch.Load()
			x.mu.Lock()
			if c.state.Load() != dlWatched {
				x.mu.Unlock()
				continue
			}
			c.state.Store(st)
			c.w.remove(x)
			if x.stopParent != nil {
				x.stopParent()
			}
			close(x.done)
			afters := x.afters
			x.afters = nil
			x.mu.Unlock()
			for _, a := range afters {
				go a.f()
			}
			return c.errOf(st)
		default:
			return c.errOf(cur)
		}
	}
}

// cancelCtxKey is the key with which context.Cause asks a context for the
// nearest of the context package's own cancelable contexts. It is learnt
// once, from a context that records what it is asked; until then (or if
// the context package stops asking), it matches no key.
var cancelCtxKey any = new(byte)

func init() {
	var p keyProbe
	_ = context.Cause(&p)
	if p.key != nil {
		cancelCtxKey = p.key
	}
}

// keyProbe is an ended context that records the key of the last Value
// asked of it.
type keyProbe struct{ key any }

func (*keyProbe) Deadline() (time.Time, bool) { return time.Time{}, false }
func (*keyProbe) Done() <-chan struct{}       { return closedDone }
func (*keyProbe) Err() error                  { return context.Canceled }
func (p *keyProbe) Value(key any) any         { p.key = key; return nil }

// Watched reports whether something asked for the context's Done channel
// (or derived a context from it) while it lived: only then does it hold a
// place on the wheel, which ending it gives back. The HTTP Transport asks,
// to end only such contexts when a response body is closed.
func (c *deadlineCtx) Watched() bool {
	return c.watch.Load() != nil && c.state.Load() == dlWatched
}
