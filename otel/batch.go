package bulwarkotel

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
)

// batchSize is how many durations a shard holds before the call that fills
// it hands them to the SDK: large enough that the histogram's counters are
// written in runs, small enough that the call doing it waits a few
// microseconds at most.
const batchSize = 64

// durationBatches keeps the Observer's durations in per-processor shards
// until a shard fills or the MeterProvider collects, and then records them
// into bulwark.request.duration. Recorded one call at a time, every core
// would write the same few counters of the SDK's histogram on every call,
// and those writes, bouncing between cores, cost more than the rest of the
// middleware. Nothing is lost and nothing is approximated: every duration
// is recorded as measured, before the collection that follows it.
type durationBatches struct {
	record func(*series, float64)
	shards []batchShard
	next   atomic.Uint32
	closed atomic.Bool
	// local hands each processor its shard: sync.Pool keeps a value per P,
	// so a shard stays in one core's cache. When the pool is emptied (by a
	// garbage collection) a processor just gets another shard; the
	// durations live in shards, never in the pool.
	local sync.Pool
}

type batchShard struct {
	mu      sync.Mutex
	n       int
	samples [batchSize]sample
	_       [64]byte // the next shard's lock on another cache line
}

type sample struct {
	s *series
	v float64
}

func newDurationBatches(record func(*series, float64)) *durationBatches {
	d := &durationBatches{record: record, shards: make([]batchShard, 2*runtime.GOMAXPROCS(0))}
	d.local.New = func() any { return &d.shards[int(d.next.Add(1))%len(d.shards)] }
	return d
}

// add keeps v for s; the call that fills a shard records its durations.
func (d *durationBatches) add(s *series, v float64) {
	sh := d.local.Get().(*batchShard)
	sh.mu.Lock()
	if d.closed.Load() { // closed and flushed: nothing would flush it again
		sh.mu.Unlock()
		d.local.Put(sh)
		d.record(s, v)
		return
	}
	sh.samples[sh.n] = sample{s, v}
	sh.n++
	if sh.n < batchSize {
		sh.mu.Unlock()
		d.local.Put(sh)
		return
	}
	full := sh.samples
	sh.n = 0
	sh.mu.Unlock()
	d.local.Put(sh)
	for _, x := range full {
		d.record(x.s, x.v)
	}
}

// flush records every duration kept so far: at each collection, so that it
// reports every call made before it, and at Close.
func (d *durationBatches) flush() {
	var held [batchSize]sample
	for i := range d.shards {
		sh := &d.shards[i]
		sh.mu.Lock()
		n := copy(held[:], sh.samples[:sh.n])
		sh.n = 0
		sh.mu.Unlock()
		for _, x := range held[:n] {
			d.record(x.s, x.v)
		}
	}
}

// close flushes the shards for the last time; a call still adding a
// duration then records it at once.
func (d *durationBatches) close() {
	d.closed.Store(true)
	d.flush()
}

// recordDuration records one duration into bulwark.request.duration,
// without a context: a batched duration carries no exemplar.
func (t *Telemetry) recordDuration(s *series, v float64) {
	t.inst.duration.Record(context.Background(), v, s.duration...)
}
