package store

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
	"github.com/bulwark-go/bulwark/internal/redistest"
	"github.com/bulwark-go/bulwark/internal/wait"
)

// quotaEndpoint is the endpoint whose rate limit the quota tests share.
const quotaEndpoint = "GET /quota"

// quotaRate is the cluster's limit in the quota tests, in calls per
// second: large enough that a sync interval's demand is hundreds of calls.
const quotaRate = 10_000

// sharedInstances starts one instance per name on srv, each with
// quotaEndpoint's rate limit of quotaRate shared.
func sharedInstances(t *testing.T, srv *redistest.Server, names ...string) []*instance {
	t.Helper()
	out := make([]*instance, len(names))
	for i, n := range names {
		in := newInstance(t, srv, n, core.BreakerConfig{}, RedisConfig{})
		if err := in.m.Reconfigure(quotaEndpoint, core.EndpointConfig{
			RateLimit: &core.RateLimitConfig{Rate: quotaRate, Burst: 100, Shared: true},
		}); err != nil {
			t.Fatal(err)
		}
		out[i] = in
	}
	return out
}

func (in *instance) limiter(t testing.TB) *core.RateLimiter {
	t.Helper()
	e, err := in.m.Endpoint(quotaEndpoint)
	if err != nil || e.RateLimiter() == nil {
		t.Fatalf("%s: endpoint %v, limiter %v", in.s.InstanceID(), err, e)
	}
	return e.RateLimiter()
}

// offer calls l.Allow at a steady rate per second until stop is closed.
func offer(l *core.RateLimiter, rate float64, stop <-chan struct{}, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		start, done := time.Now(), 0
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			for due := int(time.Since(start).Seconds() * rate); done < due; done++ {
				_ = l.Allow()
			}
		}
	}()
}

// offerEach offers each instance's limiter its rate until the test ends.
func offerEach(t *testing.T, ins []*instance, rates ...float64) {
	t.Helper()
	stop, wg := make(chan struct{}), &sync.WaitGroup{}
	for i, in := range ins {
		offer(in.limiter(t), rates[i], stop, wg)
	}
	t.Cleanup(func() {
		close(stop)
		wg.Wait()
	})
}

// shares returns each instance's share of the limit in force.
func shares(t testing.TB, ins []*instance) []float64 {
	out := make([]float64, len(ins))
	for i, in := range ins {
		out[i] = in.limiter(t).Stats().Share
	}
	return out
}

// near reports whether every got is within tol of want.
func near(got, want []float64, tol float64) bool {
	for i := range got {
		if math.Abs(got[i]-want[i]) > tol {
			return false
		}
	}
	return true
}

// demandShares is what the policy gives instances offered rates: each
// one's demand over the cluster's, the demand of an interval being its
// calls plus one.
func demandShares(rates []float64) []float64 {
	per := testSync.Seconds()
	sum := 0.0
	for _, r := range rates {
		sum += r*per + 1
	}
	out := make([]float64, len(rates))
	for i, r := range rates {
		out[i] = (r*per + 1) / sum
	}
	return out
}

// converge waits until the instances' shares are within tol of want and
// returns how many sync rounds the first instance made meanwhile.
func converge(t *testing.T, ins []*instance, want []float64, tol float64, what string) uint64 {
	t.Helper()
	start := ins[0].s.rounds.Load()
	wait.For(t, testWait, what, func() bool { return near(shares(t, ins), want, tol) })
	return ins[0].s.rounds.Load() - start
}

// Three instances offered 1.5 times the cluster's limit, split 70/20/10,
// end up with shares of the limit in that proportion within a few sync
// intervals, and together allow about the limit. One that closes gets the
// whole limit back, and the others split what it leaves.
func TestRedisSharedRateLimitFollowsDemand(t *testing.T) {
	srv := redistest.Start(t)
	ins := sharedInstances(t, srv, "a", "b", "c")
	rates := []float64{0.7 * 1.5 * quotaRate, 0.2 * 1.5 * quotaRate, 0.1 * 1.5 * quotaRate}
	offerEach(t, ins, rates...)
	want := demandShares(rates)
	n := converge(t, ins, want, 0.03, fmt.Sprintf("shares of %.3f", want))
	t.Logf("shares %.3f after %d sync rounds (want %.3f)", shares(t, ins), n, want)
	if n > 12 {
		t.Errorf("the shares took %d sync rounds to converge, want a few", n)
	}

	// Together, about the limit.
	before := make([]uint64, len(ins))
	for i, in := range ins {
		before[i] = in.limiter(t).Stats().Allowed
	}
	start, r0 := time.Now(), ins[0].s.rounds.Load()
	wait.For(t, testWait, "25 sync rounds", func() bool { return ins[0].s.rounds.Load() >= r0+25 })
	elapsed := time.Since(start).Seconds()
	var allowed uint64
	for i, in := range ins {
		allowed += in.limiter(t).Stats().Allowed - before[i]
	}
	rate := float64(allowed) / elapsed
	t.Logf("the cluster allowed %d calls in %.2fs: %.0f/s for a limit of %d/s", allowed, elapsed, rate, quotaRate)
	if rate < 0.85*quotaRate || rate > 1.15*quotaRate {
		t.Errorf("the cluster allowed %.0f calls/s, want about %d", rate, quotaRate)
	}
	if got := shares(t, ins); math.Abs(got[0]+got[1]+got[2]-1) > 0.05 {
		t.Errorf("shares %.3f sum to %.3f, want about 1", got, got[0]+got[1]+got[2])
	}

	// c leaves: its limiter has the whole limit again, and a and b split
	// the cluster's without it.
	ins[2].close()
	if st := ins[2].limiter(t).Stats(); st.Share != 1 || st.Rate != quotaRate {
		t.Errorf("after Close: share %v, rate %v; want the whole limit", st.Share, st.Rate)
	}
	want = demandShares(rates[:2])
	n = converge(t, ins[:2], want, 0.03, fmt.Sprintf("a and b's shares of %.3f", want))
	t.Logf("without c: shares %.3f after %d sync rounds", shares(t, ins[:2]), n)
}

// While Redis is unreachable the shares move toward an even split, a
// little each interval rather than at once; Close gives the whole limit
// back, Redis or not.
func TestRedisSharedRateLimitDuringOutage(t *testing.T) {
	srv := redistest.Start(t)
	ins := sharedInstances(t, srv, "a", "b", "c")
	rates := []float64{0.7 * 1.5 * quotaRate, 0.2 * 1.5 * quotaRate, 0.1 * 1.5 * quotaRate}
	offerEach(t, ins, rates...)
	converge(t, ins, demandShares(rates), 0.03, "shares of 70/20/10")
	start := shares(t, ins)[0]

	srv.Kill()
	var seen []float64 // a's share as it moves
	even := []float64{1.0 / 3, 1.0 / 3, 1.0 / 3}
	took := wait.For(t, testWait, "shares of a third each", func() bool {
		got := shares(t, ins)
		seen = append(seen, got[0])
		return near(got, even, 0.02)
	})
	t.Logf("a's share went from %.3f to a third in %v, through %.3f", start, took.Round(time.Millisecond), seen)
	between := false
	for i, v := range seen {
		if i > 0 && v > seen[i-1]+0.02 {
			t.Fatalf("a's share went up while moving toward a third: %.3f", seen)
		}
		between = between || (v < start-0.05 && v > 1.0/3+0.05)
	}
	if !between {
		t.Errorf("a's share jumped from %.3f to a third: %.3f", start, seen)
	}
	if ins[0].s.healthy.Load() {
		t.Fatal("healthy without Redis")
	}
	for _, in := range ins {
		in.close()
		if st := in.limiter(t).Stats(); st.Share != 1 || st.Rate != quotaRate {
			t.Errorf("%s after Close: share %v, rate %v; want the whole limit", in.s.InstanceID(), st.Share, st.Rate)
		}
	}
}

// A limit that is not Shared is left alone, with no Redis key of its
// own; made Shared at runtime it is shared, and made local again it gets
// the whole limit back.
func TestRedisRateLimitSharedAtRuntime(t *testing.T) {
	srv := redistest.Start(t)
	ins := sharedInstances(t, srv, "a", "b")
	local := &core.RateLimitConfig{Rate: quotaRate, Burst: 100}
	for _, in := range ins {
		if err := in.m.Reconfigure(quotaEndpoint, core.EndpointConfig{RateLimit: local}); err != nil {
			t.Fatal(err)
		}
	}
	offerEach(t, ins, 0.8*quotaRate, 0.4*quotaRate)
	r0 := ins[0].s.rounds.Load()
	wait.For(t, testWait, "10 sync rounds", func() bool { return ins[0].s.rounds.Load() >= r0+10 })
	if got := shares(t, ins); got[0] != 1 || got[1] != 1 {
		t.Fatalf("shares of a limit not shared: %v", got)
	}
	raw := newTestClient(t, srv)
	pattern := newRedisKeys("bulwark", quotaEndpoint).tag + ":q:*"
	if keys, err := raw.Keys(context.Background(), pattern).Result(); err != nil || len(keys) != 0 {
		t.Fatalf("quota keys of a limit not shared: %v %v", keys, err)
	}

	for _, in := range ins {
		if err := in.m.Reconfigure(quotaEndpoint, core.EndpointConfig{RateLimit: &core.RateLimitConfig{Rate: quotaRate, Burst: 100, Shared: true}}); err != nil {
			t.Fatal(err)
		}
	}
	want := demandShares([]float64{0.8 * quotaRate, 0.4 * quotaRate})
	converge(t, ins, want, 0.03, fmt.Sprintf("shares of %.3f", want))
	if keys, err := raw.Keys(context.Background(), pattern).Result(); err != nil || len(keys) == 0 || len(keys) > quotaLag+3 {
		t.Fatalf("quota keys of a shared limit: %v %v, want a few buckets", keys, err)
	}

	if err := ins[0].m.Reconfigure(quotaEndpoint, core.EndpointConfig{RateLimit: local}); err != nil {
		t.Fatal(err)
	}
	wait.For(t, testWait, "a's whole limit back", func() bool { return shares(t, ins)[0] == 1 })
	wait.For(t, testWait, "b's whole limit, a gone from the cluster's demand", func() bool { return shares(t, ins)[1] > 0.97 })
}

// Bucket keys of the wrong type or holding nonsense are reported and
// replaced; the shares go on being computed from the buckets that follow.
func TestRedisSharedRateLimitGarbage(t *testing.T) {
	srv := redistest.Start(t)
	ins := sharedInstances(t, srv, "a", "b")
	raw := newTestClient(t, srv)
	ctx := context.Background()
	tm, err := raw.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	w := testSync.Milliseconds()
	pre := newRedisKeys("bulwark", quotaEndpoint).tag + fmt.Sprintf(":q:%d:", w)
	for b := tm.UnixMilli() / w; b < tm.UnixMilli()/w+40; b++ {
		k := pre + fmt.Sprint(b)
		switch b % 4 {
		case 0:
			err = raw.Set(ctx, k, "not a hash", time.Minute).Err()
		case 1:
			err = raw.HSet(ctx, k, "d", "lots", "n", "1").Err()
		case 2:
			err = raw.HSet(ctx, k, "d", "5", "n", "-3").Err()
		case 3:
			err = raw.HSet(ctx, k, "d", "1e300", "n", "x").Err()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, in := range ins {
		in.loaded(t, quotaEndpoint)
	}
	offerEach(t, ins, 1.2*quotaRate, 0.3*quotaRate)
	wait.For(t, testWait, "a report of the malformed buckets", func() bool {
		return ins[0].rec.count(func(e events.Event) bool {
			s, ok := e.(events.StoreStatus)
			return ok && s.Status == events.StoreError && s.Endpoint == quotaEndpoint && strings.Contains(s.Error, "shared rate limit")
		}) > 0
	})
	want := demandShares([]float64{1.2 * quotaRate, 0.3 * quotaRate})
	converge(t, ins, want, 0.03, fmt.Sprintf("shares of %.3f past the garbage", want))
}

// spread divides a round's calls among the buckets they came in.
func TestQuotaSpread(t *testing.T) {
	for _, tc := range []struct {
		from, now, w int64
		calls        float64
		counted      int64
		want         []quotaAdd
	}{
		// One interval, in the middle of the buckets: half in each, one
		// idle call on top.
		{from: 1050, now: 1150, w: 100, calls: 99, counted: 10, want: []quotaAdd{{10, 50, false}, {11, 50, true}}},
		// On the boundaries: one bucket.
		{from: 1000, now: 1100, w: 100, calls: 9, counted: 9, want: []quotaAdd{{10, 10, true}}},
		// Late by a lot: the last three intervals only.
		{from: 0, now: 1000, w: 100, calls: 297, counted: 6, want: []quotaAdd{{7, 100, true}, {8, 100, true}, {9, 100, true}}},
		// Late, off the boundaries: four buckets.
		{from: 1, now: 1050, w: 100, calls: 297, counted: 7, want: []quotaAdd{{7, 50, false}, {8, 100, true}, {9, 100, true}, {10, 50, true}}},
		// A time that went back: a millisecond.
		{from: 2000, now: 1000, w: 100, calls: 10, counted: 9, want: []quotaAdd{{9, 10.01, false}}},
	} {
		got := spread(tc.from, tc.now, tc.w, tc.calls, tc.counted)
		ok := len(got) == len(tc.want) && len(got) <= maxQuotaAdds
		for i := 0; ok && i < len(got); i++ {
			ok = got[i].idx == tc.want[i].idx && got[i].count == tc.want[i].count && math.Abs(got[i].d-tc.want[i].d) < 1e-9
		}
		if !ok {
			t.Errorf("spread(%d, %d, %d, %v, %d) = %+v, want %+v", tc.from, tc.now, tc.w, tc.calls, tc.counted, got, tc.want)
		}
	}
}

// FuzzParseQuotaReply feeds arbitrary replies to the quota parser: it
// must never panic, and a bucket it accepts holds a possible demand.
func FuzzParseQuotaReply(f *testing.F) {
	f.Add("12.5", "3", int64(0), true, true)
	f.Add("", "", int64(9), false, false)
	f.Add("NaN", "1", int64(1), true, true)
	f.Add("-1", "0", int64(0), true, false)
	f.Add("1e400", "99999999999", int64(-1), true, true)
	f.Fuzz(func(t *testing.T, d, n string, removed int64, hasD, hasN bool) {
		var dv, nv any
		if hasD {
			dv = d
		}
		if hasN {
			nv = n
		}
		reads, err := parseQuotaReply([]any{[]any{dv, nv, removed}}, 1)
		if err != nil {
			return
		}
		r := reads[0]
		if r.err != nil {
			return
		}
		if !(r.d >= 0 && r.d <= maxQuotaDemand) || r.n < 0 || r.n > maxQuotaInstances || (r.d > 0 && r.n == 0) ||
			r.removed < 0 || r.removed > maxQuotaAdds+1 {
			t.Fatalf("accepted %+v from %q %q %d", r, d, n, removed)
		}
	})
}
