package core

import (
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark/internal/check"
)

// RetryBudgetConfig configures a RetryBudget. The zero value is the default
// budget: retries may add 20% to the load, plus 10 retries a second, counted
// over the last 10 seconds (the defaults of Finagle's retry budget).
type RetryBudgetConfig struct {
	// Ratio is how many retries are allowed per first attempt over Window.
	// Default 0.2; above 0 up to 10.
	Ratio float64
	// MinRetriesPerSecond is a floor of retries that are always allowed,
	// so that a quiet client can still retry. Default 10; above 0 up to
	// 1,000,000. Set NoMinRetries for no floor.
	MinRetriesPerSecond float64
	// NoMinRetries drops the floor: only Ratio applies. MinRetriesPerSecond
	// must then be 0.
	NoMinRetries bool
	// Window is the span over which first attempts and retries are counted.
	// Default 10s; 1s to 1h.
	Window time.Duration
	// Clock tells time. Nil means SystemClock.
	Clock Clock
}

const (
	// The window is counted in 10 buckets, in a ring of 16 so that the
	// index is a mask away.
	retryBudgetBuckets          = 16
	retryBudgetBucketsPerWindow = 10
	// A packed word holds an epoch in its high 32 bits and a count in its
	// low 32; counts saturate at 2^31, far from spilling into the epoch.
	packedCountMask              = 1<<32 - 1
	packedCountSaturation uint64 = 1 << 31
)

// normalize fills every zero field with its default and reports every
// field out of range into c.
func (cfg RetryBudgetConfig) normalize(c *check.Checker) RetryBudgetConfig {
	c.Float("Ratio", &cfg.Ratio, 0.2, 1e-9, 10)
	if cfg.NoMinRetries {
		if cfg.MinRetriesPerSecond != 0 {
			c.Fail("MinRetriesPerSecond", cfg.MinRetriesPerSecond, "must be 0 when NoMinRetries is set")
		}
	} else {
		c.Float("MinRetriesPerSecond", &cfg.MinRetriesPerSecond, 10, 1e-9, 1_000_000)
	}
	c.Duration("Window", &cfg.Window, 10*time.Second, time.Second, time.Hour)
	if cfg.Clock == nil {
		cfg.Clock = SystemClock()
	}
	return cfg
}

// RetryBudget caps retries to a share of first attempts, like the retry
// budgets of Finagle and gRPC: during an outage every call fails, and
// without a budget each caller's retries multiply the load on the very
// service that is down.
//
// Over the last Window it allows
//
//	MinRetriesPerSecond×Window + Ratio×(first attempts)
//
// retries. Share one budget among the Retry values that call the same
// service. Counting is lock-free and O(1); under concurrency the budget may
// be overshot by at most the number of callers retrying at the same moment.
type RetryBudget struct {
	cfg     RetryBudgetConfig
	clock   Clock
	width   uint64  // bucket width in nanoseconds
	reserve float64 // MinRetriesPerSecond × Window
	// Each word packs a bucket's epoch (high 32 bits) and count (low 32
	// bits), so that a stale bucket is recognised and reset without a lock.
	first   [retryBudgetBuckets]atomic.Uint64
	retries [retryBudgetBuckets]atomic.Uint64
}

// NewRetryBudget returns a budget, or every field of cfg that is out of
// range as *ConfigError values.
func NewRetryBudget(cfg RetryBudgetConfig) (*RetryBudget, error) {
	c := newChecker("core.RetryBudgetConfig.")
	cfg = cfg.normalize(c)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return newRetryBudget(cfg), nil
}

// newRetryBudget builds a budget from a configuration already checked (or
// made by the package itself, with Clock set).
func newRetryBudget(cfg RetryBudgetConfig) *RetryBudget {
	return &RetryBudget{
		cfg:     cfg,
		clock:   cfg.Clock,
		width:   uint64(cfg.Window / retryBudgetBucketsPerWindow),
		reserve: cfg.MinRetriesPerSecond * cfg.Window.Seconds(),
	}
}

// epoch returns the current bucket number.
func (b *RetryBudget) epoch() uint64 { return uint64(max(b.clock.Nanotime(), 0)) / b.width }

// recordFirst counts a first attempt: it is what earns retries.
func (b *RetryBudget) recordFirst() {
	e := b.epoch()
	addPacked(&b.first[e%retryBudgetBuckets], e)
}

// tryRetry reports whether the budget allows one more retry now, and counts
// it when it does.
func (b *RetryBudget) tryRetry() bool {
	e := b.epoch()
	first, retries := b.sums(e)
	if float64(retries)+1 > b.reserve+b.cfg.Ratio*float64(first) {
		return false
	}
	addPacked(&b.retries[e%retryBudgetBuckets], e)
	return true
}

func (b *RetryBudget) sums(e uint64) (first, retries uint64) {
	for i := uint64(0); i < retryBudgetBucketsPerWindow && i <= e; i++ {
		x := e - i
		first += packedCount(b.first[x%retryBudgetBuckets].Load(), x)
		retries += packedCount(b.retries[x%retryBudgetBuckets].Load(), x)
	}
	return first, retries
}

// addPacked adds one to the count of a packed epoch/count word, first
// resetting it when it holds an older epoch. The count saturates at 2^31 so
// that it can never spill into the epoch.
func addPacked(w *atomic.Uint64, epoch uint64) {
	tag := epoch << 32
	for {
		v := w.Load()
		if v&^packedCountMask == tag {
			if v&packedCountMask < packedCountSaturation {
				w.Add(1)
			}
			return
		}
		if w.CompareAndSwap(v, tag|1) {
			return
		}
	}
}

// packedCount returns the word's count if it belongs to epoch, else 0.
func packedCount(v, epoch uint64) uint64 {
	if v&^packedCountMask != epoch<<32 {
		return 0
	}
	return v & packedCountMask
}
