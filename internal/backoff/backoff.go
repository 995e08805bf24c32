// Package backoff computes the waits between attempts, the one formula
// every retry loop in Bulwark uses: exponential growth from an initial
// wait, capped, then spread at random so that clients that failed together
// do not come back together.
package backoff

import (
	"math"
	"math/rand/v2"
	"time"
)

// Policy is an exponential backoff.
type Policy struct {
	Initial    time.Duration // the wait before the first retry
	Max        time.Duration // the cap, applied before jitter
	Multiplier float64       // growth per retry; below 1 counts as 1
	Jitter     float64       // spread: each wait lands in ±Jitter of itself
}

// Wait returns the wait before retry n (0 for the first). r in [0, 1)
// draws the jitter; the base is capped first and jittered after, so that
// waits at the cap still spread.
func (p Policy) Wait(n int, r float64) time.Duration {
	limit := float64(p.Max)
	base := float64(p.Initial) * math.Pow(max(p.Multiplier, 1), float64(max(n, 0)))
	if !(base < limit) { // also catches +Inf and NaN
		base = limit
	}
	if p.Jitter > 0 {
		base *= 1 + p.Jitter*(2*r-1)
	}
	return time.Duration(base)
}

// Random returns Wait(n) with jitter drawn from the global source.
func (p Policy) Random(n int) time.Duration { return p.Wait(n, rand.Float64()) }
