package bench

import (
	"container/heap"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/failsafe-go/failsafe-go/adaptivelimiter"
)

var (
	simFlag  = flag.Bool("sim", false, "run the load-shedding simulation (seconds; about 2 minutes a run with -sim.realtime); or set BULWARK_SIM=1")
	simRuns  = flag.Int("sim.runs", 3, "how many times to run the simulation")
	simPhase = flag.Duration("sim.phase", 5*time.Second, "how long each load step lasts")
	simTrace = flag.Bool("sim.trace", false, "log Bulwark's limit every 250ms")
	simReal  = flag.Bool("sim.realtime", false, "run on the machine's clock instead of testing/synctest's")
)

// The simulated service: simCapacity calls at simBase latency; beyond
// that, latency grows in proportion to the calls in flight.
const (
	simCapacity = 32
	simBase     = 10 * time.Millisecond
	simGood     = 50 * time.Millisecond // a call slower than this is no use to its caller
)

// simSteps is the offered load of each phase, as a multiple of capacity.
var simSteps = []float64{0.5, 2, 4, 0.5}

// simLimiter is what each contestant does with a call.
type simLimiter interface {
	acquire() (token any, ok bool)
	release(token any, latency time.Duration)
}

type simNone struct{}

func (simNone) acquire() (any, bool)       { return nil, true }
func (simNone) release(any, time.Duration) {}

type simBulkhead struct{ b *core.Bulkhead }

func (s simBulkhead) acquire() (any, bool) {
	g, err := s.b.TryAcquire()
	return g, err == nil
}

func (s simBulkhead) release(tok any, _ time.Duration) {
	g := tok.(core.Guard)
	g.Release()
}

type simFailsafe struct {
	l adaptivelimiter.AdaptiveLimiter[any]
}

func (s simFailsafe) acquire() (any, bool)             { return s.l.TryAcquirePermit() }
func (s simFailsafe) release(tok any, _ time.Duration) { tok.(adaptivelimiter.Permit).Record() }

type simBulwark struct{ l *core.AdaptiveLimiter }

func (s simBulwark) acquire() (any, bool) {
	p, err := s.l.TryAcquire(0)
	return p, err == nil
}

func (s simBulwark) release(tok any, latency time.Duration) {
	p := tok.(core.AdaptivePermit)
	p.Done(core.Success, latency)
}

type simCall struct {
	due, start time.Time
	phase      int
	tok        any
}

type simHeap []*simCall

func (h simHeap) Len() int           { return len(h) }
func (h simHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h simHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *simHeap) Push(x any)        { *h = append(*h, x.(*simCall)) }
func (h *simHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}

// simPhaseResult is what one load step did.
type simPhaseResult struct {
	offered, admitted, good int
	latencies               []time.Duration // of admitted calls
	lastReject              time.Duration   // since the phase began; -1 for none
}

func (p *simPhaseResult) goodput(phase time.Duration) float64 {
	return 100 * float64(p.good) / phase.Seconds() / (simCapacity / simBase.Seconds())
}

func (p *simPhaseResult) p99() time.Duration {
	if len(p.latencies) == 0 {
		return 0
	}
	slices.Sort(p.latencies)
	return p.latencies[int(math.Ceil(0.99*float64(len(p.latencies))))-1]
}

// runSim offers the stepped load to lim on the time package's clock (the
// machine's, or a synctest bubble's): Poisson arrivals, each admitted or
// refused at once; an admitted call's latency is set on admission from the
// calls in flight, and its end is reported once that latency has passed,
// with the latency measured.
func runSim(lim simLimiter, phase time.Duration, seed uint64, trace func(time.Duration), lag *[]time.Duration) []simPhaseResult {
	rng := rand.New(rand.NewPCG(seed, 42))
	res := make([]simPhaseResult, len(simSteps))
	for i := range res {
		res[i].lastReject = -1
	}
	var h simHeap
	start := time.Now()
	end := start.Add(time.Duration(len(simSteps)) * phase)
	next := start
	nextTrace := time.Duration(0)
	record := func(c *simCall, latency time.Duration) {
		r := &res[c.phase]
		r.latencies = append(r.latencies, latency)
		if latency <= simGood {
			r.good++
		}
	}
	for {
		now := time.Now()
		for len(h) > 0 && !h[0].due.After(now) {
			c := heap.Pop(&h).(*simCall)
			latency := now.Sub(c.start)
			if lag != nil {
				*lag = append(*lag, now.Sub(c.due))
			}
			lim.release(c.tok, latency)
			record(c, latency)
		}
		for next.Before(end) && !next.After(now) {
			ph := int(next.Sub(start) / phase)
			r := &res[ph]
			r.offered++
			if tok, ok := lim.acquire(); ok {
				r.admitted++
				inflight := len(h) + 1
				latency := time.Duration(float64(simBase) * max(1, float64(inflight)/simCapacity))
				heap.Push(&h, &simCall{due: now.Add(latency), start: now, phase: ph, tok: tok})
			} else {
				r.lastReject = now.Sub(start) - time.Duration(ph)*phase
			}
			rate := simSteps[ph] * simCapacity / simBase.Seconds()
			next = next.Add(time.Duration(rng.ExpFloat64() / rate * float64(time.Second)))
		}
		if trace != nil && now.Sub(start) >= nextTrace {
			trace(now.Sub(start))
			nextTrace += 250 * time.Millisecond
		}
		if !next.Before(end) && (len(h) == 0 || now.Sub(end) > 200*time.Millisecond) {
			break
		}
		wake := next
		if len(h) > 0 && (h[0].due.Before(wake) || !next.Before(end)) {
			wake = h[0].due
		}
		if d := time.Until(wake); d > 0 {
			time.Sleep(d)
		}
	}
	// Calls still running (only without a limit) would end far later:
	// count them at the latency they were given.
	for _, c := range h {
		record(c, c.due.Sub(c.start))
	}
	return res
}

type simContestant struct {
	name string
	make func() simLimiter
}

// wallClock is a core.Clock on the time package, so that inside a
// testing/synctest bubble Bulwark's windows run on the bubble's clock, as
// failsafe-go's do.
type wallClock struct{ origin time.Time }

func (c wallClock) Now() time.Time                      { return time.Now() }
func (c wallClock) Nanotime() int64                     { return int64(time.Since(c.origin)) }
func (c wallClock) NewTimer(d time.Duration) core.Timer { return wallTimer{time.NewTimer(d)} }

type wallTimer struct{ t *time.Timer }

func (t wallTimer) C() <-chan time.Time { return t.t.C }
func (t wallTimer) Stop() bool          { return t.t.Stop() }

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// simContestants are made inside the bubble they run in, so that every
// clock reading they take is the bubble's.
func simContestants() []simContestant {
	bulkhead := func(n int) func() simLimiter {
		return func() simLimiter {
			return simBulkhead{must(core.NewBulkhead(core.BulkheadConfig{Name: "sim", MaxConcurrentRequests: n, MaxQueueSize: core.NoQueue}))}
		}
	}
	return []simContestant{
		{"no limit", func() simLimiter { return simNone{} }},
		{"bulkhead 2C (64)", bulkhead(2 * simCapacity)},
		{"bulkhead C/2 (16)", bulkhead(simCapacity / 2)},
		{"failsafe-go adaptivelimiter", func() simLimiter {
			return simFailsafe{adaptivelimiter.NewBuilder[any]().Build()}
		}},
		{"bulwark AdaptiveLimiter", func() simLimiter {
			return simBulwark{must(core.NewAdaptiveLimiter(core.AdaptiveConfig{Name: "sim", Clock: wallClock{time.Now()}}))}
		}},
	}
}

// TestLoadSheddingSimulation is the proof that the adaptive limiter sheds
// load well: a service of capacity 32 at 10ms, offered 0.5x, 2x, 4x and
// again 0.5x its capacity, behind no limit, a bulkhead too high, one too
// low, failsafe-go's adaptive limiter and Bulwark's, all with their
// defaults (Bulwark's clock is the time package's, like failsafe-go's).
//
// It runs inside a testing/synctest bubble: time.Now, time.Sleep and
// timers are the bubble's, for failsafe-go as for everything else, so the
// run is free of the machine's scheduling noise, the same for every
// contestant, and takes seconds instead of minutes. -sim.realtime runs it
// on the machine's clock instead. Either way it is behind a flag:
//
//	cd bench && go test -run TestLoadSheddingSimulation -sim -v
func TestLoadSheddingSimulation(t *testing.T) {
	if !*simFlag && os.Getenv("BULWARK_SIM") != "1" {
		t.Skip("the load-shedding simulation runs only with -sim or BULWARK_SIM=1")
	}
	phase := *simPhase
	contestants := simContestants()
	type row struct {
		goodput    [4]float64
		p99        [4]time.Duration
		admitAfter time.Duration // -1s: never within the phase
	}
	all := make([][]row, len(contestants))
	for run := range *simRuns {
		var b strings.Builder
		fmt.Fprintf(&b, "run %d: capacity %d calls at %v, phases of %v at %v x capacity\n", run+1, simCapacity, simBase, phase, simSteps)
		fmt.Fprintf(&b, "%-29s | %-31s | %-31s | %s\n", "", "goodput, % of capacity", "p99 latency of admitted calls", "full admission")
		fmt.Fprintf(&b, "%-29s | %7s %7s %7s %7s | %7s %7s %7s %7s | %s\n", "limiter", "0.5x", "2x", "4x", "0.5x", "0.5x", "2x", "4x", "0.5x", "after the drop")
		for i, c := range contestants {
			runtime.GC()
			var res []simPhaseResult
			var lag []time.Duration
			body := func() {
				lim := c.make()
				var trace func(time.Duration)
				if bw, ok := lim.(simBulwark); ok && *simTrace {
					trace = func(at time.Duration) {
						st := bw.l.Stats()
						t.Logf("%6.2fs limit %4d in flight %4d baseline %v recent %v", at.Seconds(), st.Limit, st.InFlight, st.Baseline, st.Recent)
					}
				}
				res = runSim(lim, phase, uint64(run+1), trace, &lag)
			}
			if *simReal {
				body()
				slices.Sort(lag)
				t.Logf("%s: the loop reported calls late by p50 %v, p99 %v, at most %v",
					c.name, lag[len(lag)/2], lag[len(lag)*99/100], lag[len(lag)-1])
			} else {
				synctest.Test(t, func(*testing.T) { body() })
			}
			var r row
			for p := range res {
				r.goodput[p] = res[p].goodput(phase)
				r.p99[p] = res[p].p99()
			}
			last := res[len(res)-1]
			switch {
			case last.lastReject < 0:
				r.admitAfter = 0
			case last.lastReject > phase*9/10:
				r.admitAfter = -time.Second
			default:
				r.admitAfter = last.lastReject
			}
			all[i] = append(all[i], r)
			after := "never"
			if r.admitAfter >= 0 {
				after = fmt.Sprintf("%.1fs", r.admitAfter.Seconds())
			}
			fmt.Fprintf(&b, "%-29s | %6.1f%% %6.1f%% %6.1f%% %6.1f%% | %7s %7s %7s %7s | %s\n", c.name,
				r.goodput[0], r.goodput[1], r.goodput[2], r.goodput[3],
				simMillis(r.p99[0]), simMillis(r.p99[1]), simMillis(r.p99[2]), simMillis(r.p99[3]), after)
		}
		t.Log("\n" + b.String())
	}

	// The spread over the runs, and what Bulwark must do in every run.
	var b strings.Builder
	fmt.Fprintf(&b, "spread over %d runs (min..max):\n", *simRuns)
	for i, c := range contestants {
		rows := all[i]
		g2 := simSpread(rows, func(r row) float64 { return r.goodput[1] }, "%.1f%%")
		g4 := simSpread(rows, func(r row) float64 { return r.goodput[2] }, "%.1f%%")
		p2 := simSpread(rows, func(r row) float64 { return float64(r.p99[1]) / 1e6 }, "%.1fms")
		p4 := simSpread(rows, func(r row) float64 { return float64(r.p99[2]) / 1e6 }, "%.1fms")
		ad := simSpread(rows, func(r row) float64 { return r.admitAfter.Seconds() }, "%.1fs")
		fmt.Fprintf(&b, "%-29s goodput 2x %s, 4x %s; p99 2x %s, 4x %s; full admission after %s (-1.0s = never)\n", c.name, g2, g4, p2, p4, ad)
	}
	t.Log("\n" + b.String())
	bw, fs := all[len(all)-1], all[len(all)-2]
	for run, r := range bw {
		for _, p := range []int{1, 2} {
			if r.goodput[p] < 90 {
				t.Errorf("run %d: goodput at %vx = %.1f%%, want at least 90%%", run+1, simSteps[p], r.goodput[p])
			}
			if r.p99[p] > 2*simBase {
				t.Errorf("run %d: p99 at %vx = %v, want at most %v", run+1, simSteps[p], r.p99[p], 2*simBase)
			}
		}
		if r.admitAfter < 0 || r.admitAfter > 5*time.Second {
			t.Errorf("run %d: full admission %v after the drop, want within 5s", run+1, r.admitAfter)
		}
		if r.goodput[2] <= fs[run].goodput[2] {
			t.Errorf("run %d: goodput at 4x %.1f%%, failsafe-go's %.1f%%: want higher", run+1, r.goodput[2], fs[run].goodput[2])
		}
	}
}

func simMillis(d time.Duration) string {
	if d >= 10*time.Second {
		return fmt.Sprintf("%.0fs", d.Seconds())
	}
	return fmt.Sprintf("%.1fms", float64(d)/1e6)
}

func simSpread[R any](rows []R, f func(R) float64, format string) string {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, r := range rows {
		lo, hi = min(lo, f(r)), max(hi, f(r))
	}
	return fmt.Sprintf(format+".."+format, lo, hi)
}
