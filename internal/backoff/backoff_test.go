package backoff

import (
	"math"
	"testing"
	"time"
)

func TestWaitGrowsAndCaps(t *testing.T) {
	p := Policy{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for n, w := range want {
		if got := p.Wait(n, 0.5); got != w*time.Millisecond {
			t.Errorf("Wait(%d) = %v, want %v", n, got, w*time.Millisecond)
		}
	}
	if got := p.Wait(10_000, 0.5); got != time.Second {
		t.Errorf("Wait(10000) = %v: an overflowing power must cap", got)
	}
}

func TestJitterSpreadsAroundTheBaseEvenAtTheCap(t *testing.T) {
	p := Policy{Initial: time.Second, Max: time.Second, Multiplier: 2, Jitter: 0.1}
	lo, hi := p.Wait(3, 0), p.Wait(3, math.Nextafter(1, 0))
	if lo != 900*time.Millisecond || hi < 1099*time.Millisecond || hi > 1100*time.Millisecond {
		t.Errorf("jittered range at the cap = [%v, %v], want [900ms, 1.1s)", lo, hi)
	}
}

func TestMultiplierBelowOneIsFlat(t *testing.T) {
	p := Policy{Initial: time.Second, Max: time.Minute}
	if got := p.Wait(5, 0.5); got != time.Second {
		t.Errorf("Wait = %v, want 1s", got)
	}
}
