package core

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// cacheLinePad keeps a hot, written field off the cache line of its
// neighbours, so that cores writing it do not slow cores reading them.
type cacheLinePad [64]byte

// bucket holds the partial counts of one slice of the rolling window.
type bucket struct {
	total, failed, slow atomic.Int64
	// folded is what closed holds for this bucket; it is written only under
	// the window's mutex.
	folded counts
	_      [64 - 3*8 - 3*8]byte
}

type counts struct{ total, failed, slow int64 }

func (c counts) plus(o counts) counts {
	return counts{c.total + o.total, c.failed + o.failed, c.slow + o.slow}
}

// window is a ring of time buckets with running sums, so that recording and
// reading are both O(1) whatever the number of buckets.
//
// Only the head bucket is written by calls. When time moves past it, the head
// is folded into closed (the sums of the other live buckets) and the buckets
// that fell out of the window are subtracted from closed and added to retired
// (their lifetime counts). A call that races a rotation may land in a bucket
// just folded: it is then missing from the window's sums (never from the
// lifetime counts) until that bucket is evicted, and the sums cannot drift.
type window struct {
	width int64 // nanoseconds per bucket
	n     int64

	// Read by every call.
	cur atomic.Pointer[bucket]
	end atomic.Int64 // nanotime at which cur stops being the head
	_   cacheLinePad

	// seq is odd while a rotation moves counts between closed, cur and
	// retired; readers retry until they see the same even value before and
	// after, so they never count a bucket twice or see lifetime counts dip.
	seq atomic.Uint64

	mu      sync.Mutex
	head    int64 // epoch (nanotime/width) of cur; under mu
	buckets []bucket
	closed  struct{ total, failed, slow atomic.Int64 }
	retired struct{ total, failed, slow atomic.Int64 }
}

func (w *window) init(width int64, n int, now int64) {
	w.width, w.n = width, int64(n)
	w.buckets = make([]bucket, n)
	w.head = now / width
	w.setHead()
}

func (w *window) setHead() {
	w.cur.Store(&w.buckets[w.head%w.n])
	w.end.Store((w.head + 1) * w.width)
}

// record adds one call's outcome at time now.
func (w *window) record(now int64, failed, slow bool) {
	if now >= w.end.Load() {
		w.advance(now)
	}
	b := w.cur.Load()
	b.total.Add(1)
	if failed {
		b.failed.Add(1)
	}
	if slow {
		b.slow.Add(1)
	}
}

// advance moves the head to now's bucket, evicting what fell out.
func (w *window) advance(now int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := now / w.width
	if e <= w.head {
		return
	}
	w.seq.Add(1)
	defer w.seq.Add(1)
	old := &w.buckets[w.head%w.n]
	old.folded = counts{old.total.Load(), old.failed.Load(), old.slow.Load()}
	w.closed.total.Add(old.folded.total)
	w.closed.failed.Add(old.folded.failed)
	w.closed.slow.Add(old.folded.slow)
	for k := int64(1); k <= min(e-w.head, w.n); k++ {
		w.evict(&w.buckets[(w.head+k)%w.n])
	}
	w.head = e
	w.setHead()
}

// evict moves a bucket's counts from the window to the lifetime counts.
func (w *window) evict(b *bucket) {
	w.closed.total.Add(-b.folded.total)
	w.closed.failed.Add(-b.folded.failed)
	w.closed.slow.Add(-b.folded.slow)
	b.folded = counts{}
	w.retired.total.Add(b.total.Swap(0))
	w.retired.failed.Add(b.failed.Swap(0))
	w.retired.slow.Add(b.slow.Swap(0))
}

// resize empties the window into the lifetime counts and cuts it anew into
// n buckets of width nanoseconds.
func (w *window) resize(width int64, n int, now int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seq.Add(1)
	defer w.seq.Add(1)
	for i := range w.buckets {
		w.evict(&w.buckets[i])
	}
	w.width, w.n = width, int64(n)
	w.buckets = make([]bucket, n)
	w.head = now / width
	w.setHead()
}

// reset empties the window, keeping the lifetime counts.
func (w *window) reset(now int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seq.Add(1)
	defer w.seq.Add(1)
	for i := range w.buckets {
		w.evict(&w.buckets[i]) // the head's folded is zero: it is not in closed
	}
	w.head = max(now/w.width, w.head)
	w.setHead()
}

// counts returns the window's sums as of the last rotation plus the head.
func (w *window) counts() counts {
	c, _ := w.read()
	return c
}

// lifetime returns every count ever recorded.
func (w *window) lifetime() counts {
	c, r := w.read()
	return c.plus(r)
}

// read returns the window's sums and the retired counts as one consistent
// view, retrying while a rotation is under way. Calls recorded meanwhile
// only add, so a retry is rare and short.
func (w *window) read() (win, retired counts) {
	for {
		s := w.seq.Load()
		if s&1 != 0 {
			runtime.Gosched()
			continue
		}
		b := w.cur.Load()
		win = counts{
			total:  w.closed.total.Load() + b.total.Load(),
			failed: w.closed.failed.Load() + b.failed.Load(),
			slow:   w.closed.slow.Load() + b.slow.Load(),
		}
		retired = counts{w.retired.total.Load(), w.retired.failed.Load(), w.retired.slow.Load()}
		if w.seq.Load() == s {
			return win, retired
		}
	}
}

// addRetired adds restored lifetime counts.
func (w *window) addRetired(c counts) {
	w.retired.total.Add(c.total)
	w.retired.failed.Add(c.failed)
	w.retired.slow.Add(c.slow)
}
