// Package wait is the one polling helper of Bulwark's tests: it waits for
// a condition that other goroutines or processes make true, for tests that
// cannot run under testing/synctest (real sockets, real processes).
package wait

import (
	"testing"
	"time"
)

// For polls cond every few milliseconds until it holds, and fails the test
// naming what was awaited when it does not hold within timeout. It returns
// how long it waited.
func For(tb testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	tb.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for interval := time.Millisecond; ; interval = min(2*interval, 10*time.Millisecond) {
		if cond() {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(interval)
	}
}
