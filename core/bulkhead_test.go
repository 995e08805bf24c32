package core

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

// timerWait bounds how long a test waits, in real time, for code under test
// to start waiting on a FakeClock timer.
const timerWait = 5 * time.Second

func newTestBulkhead(t *testing.T, cfg BulkheadConfig, clock Clock) *Bulkhead {
	t.Helper()
	cfg.Name, cfg.Clock = "api", clock
	b, err := NewBulkhead(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newStripedBulkhead makes a bulkhead with n stripes whatever GOMAXPROCS is,
// to exercise the cross-stripe paths.
func newStripedBulkhead(t testing.TB, cfg BulkheadConfig, clock Clock, n int) *Bulkhead {
	t.Helper()
	cfg.Name, cfg.Clock = "striped", clock
	c := newChecker("core.BulkheadConfig.")
	cfg = cfg.normalize(c)
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
	b := &Bulkhead{name: cfg.Name}
	b.cfg.Store(&cfg)
	b.lim.init(cfg, min(n, cfg.MaxConcurrentRequests), newBulkRejections(cfg))
	return b
}

func fakeClock() *FakeClock { return NewFakeClock(time.Unix(1_700_000_000, 0)) }

func mustAcquire(t *testing.T, b *Bulkhead) Guard {
	t.Helper()
	g, err := b.TryAcquire()
	if err != nil {
		t.Fatalf("TryAcquire: %v", err)
	}
	return g
}

func TestBulkheadConfigNamesTheField(t *testing.T) {
	valid := []BulkheadConfig{
		{},
		{Disabled: true},
		{MaxConcurrentRequests: 1, MaxQueueSize: 1, QueueTimeout: time.Millisecond, RetryAfter: time.Millisecond},
		{MaxConcurrentRequests: 1_000_000, MaxQueueSize: 1_000_000, QueueTimeout: 24 * time.Hour, RetryAfter: time.Hour},
		{MaxQueueSize: NoQueue},
	}
	for _, c := range valid {
		if _, err := NewBulkhead(c); err != nil {
			t.Errorf("%+v: unexpected error %v", c, err)
		}
	}
	invalid := []struct {
		cfg   BulkheadConfig
		field string
	}{
		{BulkheadConfig{MaxConcurrentRequests: -1}, "MaxConcurrentRequests"},
		{BulkheadConfig{MaxConcurrentRequests: 1_000_001}, "MaxConcurrentRequests"},
		{BulkheadConfig{MaxQueueSize: -2}, "MaxQueueSize"},
		{BulkheadConfig{MaxQueueSize: 1_000_001}, "MaxQueueSize"},
		{BulkheadConfig{QueueTimeout: -time.Second}, "QueueTimeout"},
		{BulkheadConfig{QueueTimeout: time.Microsecond}, "QueueTimeout"},
		{BulkheadConfig{QueueTimeout: 25 * time.Hour}, "QueueTimeout"},
		{BulkheadConfig{RetryAfter: -time.Second}, "RetryAfter"},
		{BulkheadConfig{RetryAfter: 2 * time.Hour}, "RetryAfter"},
	}
	for _, tc := range invalid {
		b, err := NewBulkhead(tc.cfg)
		want := "core.BulkheadConfig." + tc.field
		ces := configErrors(err)
		if b != nil || len(ces) != 1 || ces[0].Field != want {
			t.Errorf("%+v: got %v, want one *ConfigError for %s", tc.cfg, err, want)
			continue
		}
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "between") {
			t.Errorf("%+v: error %q should match ErrInvalidConfig and give the range", tc.cfg, err)
		}
	}
}

func TestBulkheadDefaults(t *testing.T) {
	clock := fakeClock()
	b := newTestBulkhead(t, BulkheadConfig{}, clock)
	want := BulkheadConfig{Name: "api", MaxConcurrentRequests: 100, MaxQueueSize: 10, QueueTimeout: 5 * time.Second, RetryAfter: time.Second, Clock: clock}
	if got := *b.cfg.Load(); got != want {
		t.Fatalf("config %+v, want %+v", got, want)
	}
	if b.name != "api" {
		t.Fatalf("name %q", b.name)
	}
	st := b.Stats()
	if st.MaxConcurrent != 100 || st.MaxQueue != 10 {
		t.Fatalf("Stats capacities = %d/%d, want 100/10", st.MaxConcurrent, st.MaxQueue)
	}
	if b, _ := NewBulkhead(BulkheadConfig{}); b.cfg.Load().Clock != SystemClock() || b.name != "" {
		t.Fatalf("a lone bulkhead: %+v", *b.cfg.Load())
	}
	if b, _ := NewBulkhead(BulkheadConfig{MaxQueueSize: NoQueue}); b.cfg.Load().MaxQueueSize != NoQueue || b.Stats().MaxQueue != 0 {
		t.Fatalf("NoQueue: %+v, %+v", *b.cfg.Load(), b.Stats())
	}
}

// A refusal is a *RejectedError: it names the endpoint, matches its
// sentinel and suggests RetryAfter.
func TestBulkheadRejectionIsARejectedError(t *testing.T) {
	clock := fakeClock()
	b := newTestBulkhead(t, BulkheadConfig{MaxConcurrentRequests: 1, MaxQueueSize: 1, QueueTimeout: time.Second, RetryAfter: 3 * time.Second}, clock)
	held := mustAcquire(t, b)
	defer held.Release()

	_, err := b.TryAcquire()
	var re *RejectedError
	if !errors.As(err, &re) || !errors.Is(err, ErrBulkheadFull) || errors.Is(err, ErrBulkheadTimeout) || errors.Is(err, ErrOpen) {
		t.Fatalf("TryAcquire of a full bulkhead = %v", err)
	}
	if re.Endpoint != "api" || re.RetryAfter() != 3*time.Second || !re.Until.IsZero() || err.Error() != "bulkhead is full: api" {
		t.Fatalf("rejection %+v (%q), RetryAfter %v", re, err, re.RetryAfter())
	}
	if wrapped := fmt.Errorf("call: %w", err); !errors.Is(wrapped, ErrBulkheadFull) || errors.Is(wrapped, ErrBulkheadTimeout) {
		t.Fatalf("a wrapped rejection %v does not match ErrBulkheadFull alone", wrapped)
	}
	// The same value every time: refusing allocates nothing.
	if _, again := b.TryAcquire(); again != err {
		t.Fatalf("a second refusal is a new value")
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = b.TryAcquire() }); n != 0 {
		t.Fatalf("%v allocations per refusal", n)
	}

	errc := make(chan error, 1)
	go func() {
		_, err := b.Acquire(context.Background())
		errc <- err
	}()
	if !clock.WaitForTimers(1, timerWait) {
		t.Fatal("Acquire never queued")
	}
	clock.Advance(time.Second)
	err = <-errc
	if !errors.As(err, &re) || !errors.Is(err, ErrBulkheadTimeout) || errors.Is(err, ErrBulkheadFull) ||
		re.RetryAfter() != 3*time.Second || re.Endpoint != "api" {
		t.Fatalf("queue timeout = %v", err)
	}

	// The default suggestion is 1s.
	d := newTestBulkhead(t, BulkheadConfig{MaxConcurrentRequests: 1, MaxQueueSize: NoQueue}, clock)
	g := mustAcquire(t, d)
	defer g.Release()
	if _, err := d.Acquire(context.Background()); !errors.As(err, &re) || re.RetryAfter() != time.Second {
		t.Fatalf("default RetryAfter: %v", err)
	}
}

func TestBulkheadLimit(t *testing.T) {
	for _, stripes := range []int{1, 2, 3, 8} {
		clock := fakeClock()
		b := newStripedBulkhead(t, BulkheadConfig{MaxConcurrentRequests: 5, MaxQueueSize: NoQueue}, clock, stripes)
		var gs []Guard
		for range 5 {
			gs = append(gs, mustAcquire(t, b))
		}
		if _, err := b.TryAcquire(); !errors.Is(err, ErrBulkheadFull) {
			t.Fatalf("%d stripes: 6th TryAcquire = %v, want ErrBulkheadFull", stripes, err)
		}
		if _, err := b.Acquire(context.Background()); !errors.Is(err, ErrBulkheadFull) {
			t.Fatalf("%d stripes: Acquire with no queue = %v, want ErrBulkheadFull", stripes, err)
		}
		st := b.Stats()
		if st.Active != 5 || st.Admitted != 5 || st.Rejected != 2 || st.Total != 7 {
			t.Fatalf("%d stripes: stats %+v", stripes, st)
		}
		// Releasing any slot, from whichever stripe, lets one more in.
		gs[0].Release()
		g := mustAcquire(t, b)
		if _, err := b.TryAcquire(); !errors.Is(err, ErrBulkheadFull) {
			t.Fatalf("%d stripes: over the limit after a release: %v", stripes, err)
		}
		g.Release()
		for i := range gs {
			gs[i].Release()
		}
		if st := b.Stats(); st.Active != 0 {
			t.Fatalf("%d stripes: Active = %d after releasing all", stripes, st.Active)
		}
	}
}

func TestBulkheadFIFO(t *testing.T) {
	for _, stripes := range []int{1, 4} {
		clock := fakeClock()
		b := newStripedBulkhead(t, BulkheadConfig{MaxConcurrentRequests: 1, MaxQueueSize: 5}, clock, stripes)
		held := mustAcquire(t, b)
		order := make(chan int, 5)
		var wg sync.WaitGroup
		for i := range 5 {
			wg.Go(func() {
				g, err := b.Acquire(context.Background())
				if err != nil {
					t.Errorf("waiter %d: %v", i, err)
					return
				}
				order <- i
				g.Release()
			})
			// Each waiter starts its queue timer after it is queued, so
			// this returns once waiter i is in line behind the others.
			if !clock.WaitForTimers(i+1, timerWait) {
				t.Fatalf("waiter %d never queued", i)
			}
		}
		if st := b.Stats(); st.Queued != 5 {
			t.Fatalf("Queued = %d, want 5", st.Queued)
		}
		held.Release()
		wg.Wait()
		close(order)
		var got []int
		for i := range order {
			got = append(got, i)
		}
		if !slices.Equal(got, []int{0, 1, 2, 3, 4}) {
			t.Fatalf("grant order %v, want first come first served", got)
		}
		st := b.Stats()
		if st.Active != 0 || st.Queued != 0 || st.Admitted != 6 || st.Total != 6 || st.QueueTime.Count != 5 {
			t.Fatalf("stats after the queue drained: %+v", st)
		}
	}
}

func TestBulkheadQueueTimeout(t *testing.T) {
	clock := fakeClock()
	b := newTestBulkhead(t, BulkheadConfig{MaxConcurrentRequests: 1, MaxQueueSize: 2, QueueTimeout: 3 * time.Second}, clock)
	held := mustAcquire(t, b)
	defer held.Release()
	errc := make(chan error, 1)
	go func() {
		g, err := b.Acquire(context.Background())
		g.Release()
		errc <- err
	}()
	if !clock.WaitForTimers(1, timerWait) {
		t.Fatal("Acquire never queued")
	}
	clock.Advance(3*time.Second - time.Millisecond)
	select {
	case err := <-errc:
		t.Fatalf("Acquire returned %v before its queue timeout", err)
	default:
	}
	clock.Advance(time.Millisecond)
	if err := <-errc; !errors.Is(err, ErrBulkheadTimeout) {
		t.Fatalf("Acquire = %v, want ErrBulkheadTimeout", err)
	}
	st := b.Stats()
	if st.TimedOut != 1 || st.Queued != 0 || st.Active != 1 || st.Total != 2 {
		t.Fatalf("stats %+v", st)
	}
	q := st.QueueTime
	if q.Count != 1 || q.Sum != 3*time.Second {
		t.Fatalf("queue time count %d sum %v, want 1 and 3s", q.Count, q.Sum)
	}
	// 3s falls in the le=5 bucket (index 9), not le=2.5 (index 8).
	if q.Buckets[8] != 0 || q.Buckets[9] != 1 || q.Buckets[10] != 1 {
		t.Fatalf("buckets %v", q.Buckets)
	}
}

func TestBulkheadQueueHistogram(t *testing.T) {
	clock := fakeClock()
	b := newTestBulkhead(t, BulkheadConfig{MaxConcurrentRequests: 1, MaxQueueSize: 1}, clock)
	for _, wait := range []time.Duration{0, 5 * time.Millisecond, 30 * time.Millisecond, time.Second, 4 * time.Second} {
		held := mustAcquire(t, b)
		done := make(chan error, 1)
		go func() {
			g, err := b.Acquire(context.Background())
			g.Release()
			done <- err
		}()
		if !clock.WaitForTimers(1, timerWait) {
			t.Fatal("Acquire never queued")
		}
		clock.Advance(wait)
		held.Release()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	q := b.Stats().QueueTime
	// Bounds: 5ms 10ms 25ms 50ms 100ms 250ms 500ms 1s 2.5s 5s 10s; a wait
	// equal to a bound falls in that bound's bucket.
	want := [11]uint64{2, 2, 2, 3, 3, 3, 3, 4, 4, 5, 5}
	if q.Count != 5 || q.Buckets != want {
		t.Fatalf("count %d buckets %v, want 5 and %v", q.Count, q.Buckets, want)
	}
	if q.Sum != 5*time.Millisecond+30*time.Millisecond+5*time.Second {
		t.Fatalf("sum %v", q.Sum)
	}
}

func TestDurationBuckets(t *testing.T) {
	// prometheus.DefBuckets, written out: core does not import prometheus.
	want := []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	got := DurationBuckets()
	if !slices.Equal(got, want) {
		t.Fatalf("DurationBuckets() = %v, want %v", got, want)
	}
	got[0] = 99 // a copy: the next caller is unaffected
	if DurationBuckets()[0] != .005 {
		t.Fatal("DurationBuckets returned shared storage")
	}
}

func TestBulkheadContextCancel(t *testing.T) {
	clock := fakeClock()
	b := newTestBulkhead(t, BulkheadConfig{MaxConcurrentRequests: 1}, clock)
	held := mustAcquire(t, b)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := b.Acquire(ctx)
		errc <- err
	}()
	if !clock.WaitForTimers(1, timerWait) {
		t.Fatal("Acquire never queued")
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire = %v, want context.Canceled", err)
	}
	if n := clock.Timers(); n != 0 {
		t.Fatalf("%d queue timers left running after cancel", n)
	}
	held.Release()

	// A context that has already ended gets no slot, even a free one.
	ctx, cancel = context.WithTimeout(context.Background(), time.Hour)
	cancel()
	if _, err := b.Acquire(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire with an ended context = %v", err)
	}
	st := b.Stats()
	if st.Cancelled != 2 || st.Active != 0 || st.Queued != 0 || st.Total != 3 || st.QueueTime.Count != 1 {
		t.Fatalf("stats %+v", st)
	}
	// A nil context is treated as Background rather than panicking.
	g, err := b.Acquire(nil)
	if err != nil {
		t.Fatal(err)
	}
	g.Release()
}

func TestBulkheadContextDeadline(t *testing.T) {
	b := newTestBulkhead(t, BulkheadConfig{MaxConcurrentRequests: 1, QueueTimeout: time.Hour}, fakeClock())
	held := mustAcquire(t, b)
	defer held.Release()
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if _, err := b.Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire = %v, want context.DeadlineExceeded", err)
	}
}

func TestBulkheadQueueFull(t *testing.T) {
	clock := fakeClock()
	b := newTestBulkhead(t, BulkheadConfig{MaxConcurrentRequests: 1, MaxQueueSize: 2}, clock)
	held := mustAcquire(t, b)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			g, err := b.Acquire(context.Background())
			if err != nil {
				t.Error(err)
			}
			g.Release()
		})
	}
	if !clock.WaitForTimers(2, timerWait) {
		t.Fatal("waiters never queued")
	}
	if _, err := b.Acquire(context.Background()); !errors.Is(err, ErrBulkheadFull) {
		t.Fatalf("Acquire with a full queue = %v, want ErrBulkheadFull", err)
	}
	// TryAcquire never jumps the queue.
	if _, err := b.TryAcquire(); !errors.Is(err, ErrBulkheadFull) {
		t.Fatalf("TryAcquire with a queue = %v, want ErrBulkheadFull", err)
	}
	if st := b.Stats(); st.Rejected != 2 || st.Queued != 2 || st.Total != 5 {
		t.Fatalf("stats %+v", st)
	}
	held.Release()
	wg.Wait()
	if st := b.Stats(); st.Admitted != 3 || st.Active != 0 || st.Total != 5 {
		t.Fatalf("stats %+v", st)
	}
}

func TestGuardReleaseIdempotent(t *testing.T) {
	b := newTestBulkhead(t, BulkheadConfig{MaxConcurrentRequests: 2}, fakeClock())
	g := mustAcquire(t, b)
	other := mustAcquire(t, b)
	g.Release()
	g.Release()
	g.Release()
	if st := b.Stats(); st.Active != 1 {
		t.Fatalf("Active = %d after releasing one guard three times, want 1", st.Active)
	}
	other.Release()

	var zero Guard
	zero.Release()
	var nilGuard *Guard
	nilGuard.Release()
	if st := b.Stats(); st.Active != 0 {
		t.Fatalf("Active = %d", st.Active)
	}
	// Still exactly two slots.
	g1, g2 := mustAcquire(t, b), mustAcquire(t, b)
	if _, err := b.TryAcquire(); !errors.Is(err, ErrBulkheadFull) {
		t.Fatalf("third slot: %v", err)
	}
	g1.Release()
	g2.Release()
}

func TestGuardReleaseOnPanic(t *testing.T) {
	b := newTestBulkhead(t, BulkheadConfig{MaxConcurrentRequests: 1}, fakeClock())
	guarded := func() {
		g, err := b.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer g.Release()
		panic("handler blew up")
	}
	func() {
		defer func() {
			if r := recover(); r != "handler blew up" {
				t.Fatalf("recovered %v", r)
			}
		}()
		guarded()
	}()
	if st := b.Stats(); st.Active != 0 {
		t.Fatalf("Active = %d after a panic, want 0", st.Active)
	}
	g := mustAcquire(t, b)
	g.Release()
}

func TestBulkheadDisabled(t *testing.T) {
	b := newTestBulkhead(t, BulkheadConfig{Disabled: true, MaxConcurrentRequests: 1}, fakeClock())
	var gs []Guard
	for range 1000 {
		gs = append(gs, mustAcquire(t, b))
	}
	st := b.Stats()
	if st.Active != 1000 || st.MaxConcurrent != 0 || st.MaxQueue != 0 {
		t.Fatalf("stats %+v", st)
	}
	for i := range gs {
		gs[i].Release()
	}
	if st := b.Stats(); st.Active != 0 || st.Admitted != 1000 {
		t.Fatalf("stats %+v", st)
	}
}

func TestBulkheadStripeLayout(t *testing.T) {
	if n := unsafe.Sizeof(bulkStripe{}); n != 64 {
		t.Fatalf("bulkStripe is %d bytes, want one 64-byte cache line", n)
	}
	off := unsafe.Offsetof(bulkLimiter{}.mu) - unsafe.Offsetof(bulkLimiter{}.waiting)
	if off < 64 {
		t.Fatalf("the queue mutex is %d bytes from waiting, want a cache line apart", off)
	}
}

// TestBulkheadStress runs many goroutines through a small bulkhead and checks
// that the limit always holds and every call ends in exactly one outcome.
func TestBulkheadStress(t *testing.T) {
	for _, stripes := range []int{1, 4} {
		const limit, workers = 4, 64
		iters := 300
		if testing.Short() {
			iters = 50
		}
		b := newStripedBulkhead(t, BulkheadConfig{MaxConcurrentRequests: limit, MaxQueueSize: 16, QueueTimeout: 50 * time.Millisecond}, SystemClock(), stripes)
		var inside, peak, ok, failed atomic.Int64
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := range iters {
					var g Guard
					var err error
					switch {
					case i%7 == 0:
						g, err = b.TryAcquire()
					case i%11 == 0:
						ctx, cancel := context.WithTimeout(context.Background(), time.Duration(w%3)*time.Millisecond)
						g, err = b.Acquire(ctx)
						cancel()
					default:
						g, err = b.Acquire(context.Background())
					}
					if err != nil {
						failed.Add(1)
						continue
					}
					n := inside.Add(1)
					for {
						p := peak.Load()
						if n <= p || peak.CompareAndSwap(p, n) {
							break
						}
					}
					if n > limit {
						t.Errorf("%d calls inside a bulkhead of %d", n, limit)
					}
					if i%3 == 0 {
						time.Sleep(10 * time.Microsecond)
					}
					inside.Add(-1)
					ok.Add(1)
					g.Release()
					if i%5 == 0 {
						g.Release() // idempotent, even under load
					}
				}
			})
		}
		wg.Wait()
		st := b.Stats()
		if st.Active != 0 || st.Queued != 0 {
			t.Fatalf("%d stripes: left busy: %+v", stripes, st)
		}
		if st.Total != uint64(workers*iters) || st.Admitted != uint64(ok.Load()) ||
			st.Rejected+st.TimedOut+st.Cancelled != uint64(failed.Load()) {
			t.Fatalf("%d stripes: stats %+v do not add up to %d ok, %d failed", stripes, st, ok.Load(), failed.Load())
		}
		t.Logf("%d stripes: peak %d inside, %+v", stripes, peak.Load(), st)
	}
}

func TestBulkheadAcquireReleaseAllocatesNothing(t *testing.T) {
	b := newTestBulkhead(t, BulkheadConfig{}, SystemClock())
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		g, err := b.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		g.Release()
		g, _ = b.TryAcquire()
		g.Release()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per acquire and release, want 0", allocs)
	}
}
