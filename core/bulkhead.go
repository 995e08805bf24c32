package core

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark/internal/check"
)

// NoQueue is the BulkheadConfig.MaxQueueSize that turns the queue off: a call
// that finds every slot taken is rejected at once.
const NoQueue = -1

// BulkheadConfig configures one bulkhead. The zero value is the default
// bulkhead; every zero field takes the default written beside it.
type BulkheadConfig struct {
	// Name is the endpoint the bulkhead guards, as rejections name it. A
	// Manager sets it for the bulkheads it makes.
	Name string
	// Disabled lifts the limit: every call gets a slot at once. Slots are
	// still counted, so Stats keeps showing the load.
	Disabled bool
	// MaxConcurrentRequests is how many calls may hold a slot at once.
	// Default 100; 1 to 1,000,000.
	MaxConcurrentRequests int
	// MaxQueueSize is how many calls may wait for a slot, first come first
	// served. Default 10; 1 to 1,000,000, or NoQueue (-1) to reject at once
	// when every slot is taken.
	MaxQueueSize int
	// QueueTimeout is the longest a call waits in the queue before it fails
	// with ErrBulkheadTimeout. Default 5s; 1ms to 24h.
	QueueTimeout time.Duration
	// RetryAfter is the wait a refusal suggests to its caller (an HTTP
	// Retry-After). Default 1s; 1ms to 1h.
	RetryAfter time.Duration
	// Clock times the queue. Nil means SystemClock. A Manager sets its own.
	Clock Clock
}

// normalize fills every zero field with its default and reports every
// field out of range into c.
func (cfg BulkheadConfig) normalize(c *check.Checker) BulkheadConfig {
	c.Int("MaxConcurrentRequests", &cfg.MaxConcurrentRequests, 100, 1, 1_000_000)
	if q := cfg.MaxQueueSize; q == 0 {
		cfg.MaxQueueSize = 10
	} else if q != NoQueue && (q < 1 || q > 1_000_000) {
		c.Fail("MaxQueueSize", q, "must be between 1 and 1000000, or NoQueue (-1) for no queue (0 means the default, 10)")
	}
	c.Duration("QueueTimeout", &cfg.QueueTimeout, 5*time.Second, time.Millisecond, 24*time.Hour)
	c.Duration("RetryAfter", &cfg.RetryAfter, time.Second, time.Millisecond, time.Hour)
	if cfg.Clock == nil {
		cfg.Clock = SystemClock()
	}
	return cfg
}

// queueLen is the queue capacity c stands for (0 for NoQueue).
func (c BulkheadConfig) queueLen() int { return max(c.MaxQueueSize, 0) }

// BulkheadStats is a snapshot of one bulkhead. Counters only grow (from
// NewBulkhead, or from when a per-user bulkhead started tracking the user).
type BulkheadStats struct {
	// Active is how many slots are held now.
	Active int
	// Queued is how many calls wait for a slot now.
	Queued int
	// MaxConcurrent is the slot count (0 when the bulkhead is disabled).
	MaxConcurrent int
	// MaxQueue is the queue capacity (0 when there is no queue).
	MaxQueue int

	// Total counts every Acquire and TryAcquire: the sum of Admitted,
	// Rejected, TimedOut, Cancelled and Queued.
	Total uint64
	// Admitted counts calls that got a slot, at once or after waiting.
	Admitted uint64
	// Rejected counts refusals matching ErrBulkheadFull.
	Rejected uint64
	// TimedOut counts refusals matching ErrBulkheadTimeout.
	TimedOut uint64
	// Cancelled counts calls whose context ended before they got a slot.
	Cancelled uint64

	// QueueTime is the histogram of time spent waiting in the queue.
	QueueTime HistogramSnapshot
}

func (s *BulkheadStats) add(o BulkheadStats) {
	s.Active += o.Active
	s.Queued += o.Queued
	s.Total += o.Total
	s.Admitted += o.Admitted
	s.Rejected += o.Rejected
	s.TimedOut += o.TimedOut
	s.Cancelled += o.Cancelled
	s.QueueTime.add(o.QueueTime)
}

// Guard is a held bulkhead slot. Release hands it back.
//
// A Guard is a small value: taking and releasing a slot allocates nothing.
// Release through the variable Acquire returned into (or a pointer to it),
// typically with defer, which also releases the slot when the guarded code
// panics. A copy of a Guard is a second handle on the same slot, so do not
// release copies.
type Guard struct {
	s *bulkStripe
}

// Release hands the slot back. It is idempotent: only the first call on a
// Guard releases; later calls, and calls on the zero Guard, do nothing.
func (g *Guard) Release() {
	if g == nil || g.s == nil {
		return
	}
	s := g.s
	g.s = nil
	s.release()
}

// Bulkhead bounds how many calls run at once against one endpoint, with a
// bounded first-come-first-served queue for calls that find every slot
// taken. It is safe for concurrent use.
//
// Taking and releasing a free slot is a few atomic operations on a cache
// line that the current CPU usually owns already: the slots are split into
// per-CPU stripes, and a call takes a slot from another stripe only when its
// own is empty. The mutex-guarded queue is used only when every slot is
// taken.
type Bulkhead struct {
	name string
	cfg  atomic.Pointer[BulkheadConfig]
	lim  bulkLimiter
}

// NewBulkhead returns a bulkhead, or every field of cfg that is out of
// range as *ConfigError values.
func NewBulkhead(cfg BulkheadConfig) (*Bulkhead, error) {
	c := newChecker("core.BulkheadConfig.")
	cfg = cfg.normalize(c)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return newBulkhead(cfg), nil
}

func newBulkhead(cfg BulkheadConfig) *Bulkhead {
	b := &Bulkhead{name: cfg.Name}
	b.cfg.Store(&cfg)
	b.lim.init(cfg, stripesFor(cfg), newBulkRejections(cfg))
	return b
}

// reconfigure applies a normalized configuration in place: slots held and
// calls queued stay (see setLimits for how a smaller limit takes effect).
func (b *Bulkhead) reconfigure(cfg BulkheadConfig) {
	cfg.Name, cfg.Clock = b.name, b.lim.clock
	b.cfg.Store(&cfg)
	rej := newBulkRejections(cfg)
	b.lim.errFull.Store(rej[0])
	b.lim.errTimeout.Store(rej[1])
	b.lim.setLimits(cfg)
}

// newBulkRejections makes the two refusals of a bulkhead, once.
func newBulkRejections(cfg BulkheadConfig) [2]*RejectedError {
	return [2]*RejectedError{
		{Endpoint: cfg.Name, kind: ErrBulkheadFull, after: cfg.RetryAfter},
		{Endpoint: cfg.Name, kind: ErrBulkheadTimeout, after: cfg.RetryAfter},
	}
}

// Acquire takes a slot. When every slot is taken it waits in the queue until
// a slot is handed to it, QueueTimeout passes or ctx ends (ctx.Err()); when
// the queue is full too it fails at once. Both refusals are a
// *RejectedError, matching ErrBulkheadTimeout and ErrBulkheadFull. A ctx that has already ended gets its error without a
// slot. If a slot is handed over at the moment the wait ends, Acquire keeps
// it and succeeds.
//
// On success, release the Guard, typically with defer.
func (b *Bulkhead) Acquire(ctx context.Context) (Guard, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	s, w, err := b.lim.begin(ctx, true)
	if w != nil {
		s, err = b.lim.wait(ctx, w)
	}
	return Guard{s}, err
}

// TryAcquire takes a slot if one is free now and never waits: it fails with
// a *RejectedError matching ErrBulkheadFull when every slot is taken or others are already queued.
func (b *Bulkhead) TryAcquire() (Guard, error) {
	s, _, err := b.lim.begin(context.Background(), false)
	return Guard{s}, err
}

// Stats returns a snapshot of the bulkhead's load and counters.
func (b *Bulkhead) Stats() BulkheadStats { return b.lim.stats() }

// maxStripes bounds the per-CPU split of a bulkhead's slots.
const maxStripes = 64

// stripesFor picks how many stripes a bulkhead's slots are split into: about
// one per CPU, never more than there are slots.
func stripesFor(cfg BulkheadConfig) int {
	n, procs := 1, runtime.GOMAXPROCS(0)
	for n < procs && n < maxStripes {
		n *= 2
	}
	if !cfg.Disabled {
		n = min(n, cfg.MaxConcurrentRequests)
	}
	return n
}

// bulkStripe holds a share of a bulkhead's slots on a cache line of its own,
// so that CPUs taking slots from different stripes do not contend.
type bulkStripe struct {
	held     atomic.Int64  // slots taken from this stripe and not yet released
	admitted atomic.Uint64 // slots ever taken from this stripe
	lastUsed atomic.Int64  // per-user: clock Nanotime of the last release
	limit    atomic.Int64  // this stripe's share of the slots
	l        *bulkLimiter
	idx      int
	_        [16]byte
}

// take takes one of the stripe's slots if it has a free one.
func (s *bulkStripe) take() bool {
	for {
		h := s.held.Load()
		if h >= s.limit.Load() {
			return false
		}
		if s.held.CompareAndSwap(h, h+1) {
			s.admitted.Add(1)
			return true
		}
	}
}

// release hands a slot back to its stripe, then passes it on to the head of
// the queue if anyone waits.
func (s *bulkStripe) release() {
	if s.held.Add(-1) < 0 {
		// More releases than takes: only a released copy of a Guard can do
		// this. Undo it rather than let the stripe admit too many.
		s.held.Add(1)
		return
	}
	l := s.l
	if l.stampIdle {
		if now := l.clock.Nanotime(); s.lastUsed.Load() != now {
			s.lastUsed.Store(now)
		}
	}
	// The decrement above and this load pair with a waiter's increment of
	// waiting and its scan of the stripes (both sequentially consistent):
	// either the waiter saw this slot free, or this sees the waiter.
	if l.waiting.Load() != 0 {
		l.handoff()
	}
}

// bulkWaiter is one call queued for a slot.
type bulkWaiter struct {
	ready      chan struct{} // buffered 1: the slot has been handed over
	granted    *bulkStripe   // set under the limiter's mutex
	prev, next *bulkWaiter
	start      int64
}

// bulkLimiter is the slot accounting and queue shared by Bulkhead and the
// per-user bulkheads.
type bulkLimiter struct {
	// Read-mostly: fixed at init, except waiting, which changes only on the
	// slow path.
	stripes    []bulkStripe
	home       *sync.Pool // hands each P "its" stripe; nil for one stripe
	maxQueue   atomic.Int64
	timeout    atomic.Int64 // nanoseconds
	clock      Clock
	stampIdle  bool
	errFull    atomic.Pointer[RejectedError] // the refusals, made once per configuration
	errTimeout atomic.Pointer[RejectedError]
	// waiting counts queued calls plus calls about to queue. While it is
	// non-zero, free slots go to the queue first and releases take the
	// mutex to hand them over.
	waiting atomic.Int64
	_       [64]byte

	mu         sync.Mutex
	head, tail *bulkWaiter
	queued     int // under mu
	queuedHint atomic.Int64
	timedOut   uint64 // under mu
	hist       histogram
	rejected   atomic.Uint64
	cancelled  atomic.Uint64
	maxSlots   atomic.Int64
}

func (l *bulkLimiter) init(cfg BulkheadConfig, n int, rej [2]*RejectedError) {
	l.clock = cfg.Clock
	l.errFull.Store(rej[0])
	l.errTimeout.Store(rej[1])
	if l.stripes == nil {
		l.stripes = make([]bulkStripe, n)
	}
	n = len(l.stripes)
	for i := range l.stripes {
		l.stripes[i].l, l.stripes[i].idx = l, i
	}
	l.setLimits(cfg)
	if n > 1 {
		var next atomic.Uint32
		l.home = &sync.Pool{New: func() any {
			return &l.stripes[int(next.Add(1)-1)%n]
		}}
	}
}

// setLimits shares cfg's slots out among the stripes and sets the queue's
// bounds. Slots already held stay held, and a stripe over its new share
// admits nothing until enough of its own are released; while they are
// held, other stripes may still fill their shares, so a smaller limit is
// exceeded by at most the calls in flight beyond it, and only until they
// end. Calls queued when the limit rises are handed the new slots at once.
func (l *bulkLimiter) setLimits(cfg BulkheadConfig) {
	l.timeout.Store(int64(cfg.QueueTimeout))
	if cfg.Disabled {
		l.maxQueue.Store(0)
		l.maxSlots.Store(0)
	} else {
		l.maxQueue.Store(int64(cfg.queueLen()))
		l.maxSlots.Store(int64(cfg.MaxConcurrentRequests))
	}
	n := len(l.stripes)
	for i := range l.stripes {
		s := &l.stripes[i]
		if cfg.Disabled {
			s.limit.Store(1 << 62) // never reached
			continue
		}
		lim := int64(cfg.MaxConcurrentRequests / n)
		if i < cfg.MaxConcurrentRequests%n {
			lim++
		}
		s.limit.Store(lim)
	}
	if l.waiting.Load() != 0 {
		l.handoff()
	}
}

// homeStripe returns the stripe this P used last, so that an uncontended
// bulkhead keeps each stripe's cache line on one CPU. sync.Pool serves as a
// per-P slot; its New deals the stripes out in turn.
func (l *bulkLimiter) homeStripe() *bulkStripe {
	if l.home == nil {
		return &l.stripes[0]
	}
	s := l.home.Get().(*bulkStripe)
	l.home.Put(s)
	return s
}

// grab takes a free slot from any stripe, starting after skip.
func (l *bulkLimiter) grab(skip *bulkStripe) *bulkStripe {
	n := len(l.stripes)
	start := 0
	if skip != nil && n > 1 {
		start = skip.idx + 1
	}
	for i := range n {
		s := &l.stripes[(start+i)%n]
		if s != skip && s.take() {
			return s
		}
	}
	return nil
}

// begin takes a slot at once, or queues a waiter when wait is set and the
// queue has room, or fails. It never blocks on anything but the queue mutex.
func (l *bulkLimiter) begin(ctx context.Context, wait bool) (*bulkStripe, *bulkWaiter, error) {
	if err := ctx.Err(); err != nil {
		l.cancelled.Add(1)
		return nil, nil, err
	}
	if l.waiting.Load() == 0 {
		s := l.homeStripe()
		if s.take() {
			return s, nil, nil
		}
		if s = l.grab(s); s != nil {
			return s, nil, nil
		}
	}
	if maxQueue := l.maxQueue.Load(); !wait || maxQueue == 0 || l.queuedHint.Load() >= maxQueue {
		l.rejected.Add(1)
		return nil, nil, l.errFull.Load()
	}

	l.mu.Lock()
	l.waiting.Add(1)
	if l.head == nil {
		// Nobody queued ahead of us: a slot freed since the scan above is
		// ours. Scanning after announcing ourselves in waiting means a
		// release we miss here will see us and hand its slot over.
		if s := l.grab(nil); s != nil {
			l.waiting.Add(-1)
			l.mu.Unlock()
			return s, nil, nil
		}
	}
	if int64(l.queued) >= l.maxQueue.Load() {
		l.waiting.Add(-1)
		l.mu.Unlock()
		l.rejected.Add(1)
		return nil, nil, l.errFull.Load()
	}
	// Not pooled: a waiter's channel must belong to the goroutine's own
	// testing/synctest bubble, and queueing is the slow path anyway.
	w := &bulkWaiter{ready: make(chan struct{}, 1)}
	w.start = l.clock.Nanotime()
	l.push(w)
	l.mu.Unlock()
	return nil, w, nil
}

// wait blocks until w is handed a slot, the queue timeout passes or ctx ends.
func (l *bulkLimiter) wait(ctx context.Context, w *bulkWaiter) (*bulkStripe, error) {
	t := l.clock.NewTimer(time.Duration(l.timeout.Load()))
	var err error
	select {
	case <-w.ready:
		t.Stop()
		s := w.granted
		return s, nil
	case <-t.C():
		err = l.errTimeout.Load()
	case <-ctx.Done():
		t.Stop()
		err = ctx.Err()
	}
	l.mu.Lock()
	if s := w.granted; s != nil {
		// The slot was handed over as the wait ended: keep it, so that
		// every call has exactly one outcome.
		l.mu.Unlock()
		<-w.ready
		return s, nil
	}
	l.remove(w)
	l.hist.Observe(time.Duration(l.clock.Nanotime() - w.start))
	if errors.Is(err, ErrBulkheadTimeout) {
		l.timedOut++
	} else {
		l.cancelled.Add(1)
	}
	l.mu.Unlock()
	return nil, err
}

// handoff passes free slots to the head of the queue, in order.
func (l *bulkLimiter) handoff() {
	l.mu.Lock()
	for l.head != nil {
		s := l.grab(nil)
		if s == nil {
			break
		}
		w := l.head
		l.remove(w)
		l.hist.Observe(time.Duration(l.clock.Nanotime() - w.start))
		w.granted = s
		w.ready <- struct{}{}
	}
	l.mu.Unlock()
}

// push appends w to the queue. Called with mu held and waiting already
// counting w.
func (l *bulkLimiter) push(w *bulkWaiter) {
	w.prev = l.tail
	if l.tail != nil {
		l.tail.next = w
	} else {
		l.head = w
	}
	l.tail = w
	l.queued++
	l.queuedHint.Store(int64(l.queued))
}

// remove unlinks w from the queue. Called with mu held.
func (l *bulkLimiter) remove(w *bulkWaiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		l.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		l.tail = w.prev
	}
	w.prev, w.next = nil, nil
	l.queued--
	l.queuedHint.Store(int64(l.queued))
	l.waiting.Add(-1)
}

// active returns how many slots are held and calls queued, without locking.
func (l *bulkLimiter) active() (held int64, waiting int64) {
	for i := range l.stripes {
		held += l.stripes[i].held.Load()
	}
	return max(held, 0), l.waiting.Load()
}

// idle reports whether nothing holds a slot or waits for one.
func (l *bulkLimiter) idle() bool {
	h, w := l.active()
	return h == 0 && w == 0
}

func (l *bulkLimiter) stats() BulkheadStats {
	st := BulkheadStats{MaxConcurrent: int(l.maxSlots.Load()), MaxQueue: int(l.maxQueue.Load())}
	// Queue moves happen under mu, so reading under mu keeps Total from
	// dipping while a waiter turns into an admitted call.
	l.mu.Lock()
	st.Queued = l.queued
	st.TimedOut = l.timedOut
	st.QueueTime = l.hist.Snapshot()
	var held int64
	for i := range l.stripes {
		held += l.stripes[i].held.Load()
		st.Admitted += l.stripes[i].admitted.Load()
	}
	st.Rejected = l.rejected.Load()
	st.Cancelled = l.cancelled.Load()
	l.mu.Unlock()
	st.Active = int(max(held, 0))
	st.Total = st.Admitted + st.Rejected + st.TimedOut + st.Cancelled + uint64(st.Queued)
	return st
}
