package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwark-go/bulwark/internal/redistest"
	"github.com/bulwark-go/bulwark/internal/wait"
)

// The end-to-end quota run: quotaLimit calls per second for the whole
// cluster on quotaEP, offered 1.5 times over, split quotaSplit across three
// instances, measured for quotaWindow once the shares have settled.
const (
	quotaEP       = "GET /api/users/{id}"
	quotaLimit    = 1000
	quotaOverload = 1.5
	quotaWindow   = 10 * time.Second
	quotaWorkers  = 16 // concurrent requests per instance at most
)

var quotaSplit = []float64{0.7, 0.2, 0.1}

// rateLimitView is an endpoint's rate limit in GET /admin/status.
type rateLimitView struct {
	Endpoint string  `json:"endpoint"`
	Allowed  uint64  `json:"allowed"`
	Refused  uint64  `json:"refused"`
	Rate     float64 `json:"rate"`
	Shared   bool    `json:"shared"`
	Share    float64 `json:"share"`
}

// rateLimit reads quotaEP's rate limit from the app's full status.
func (a *app) rateLimit() rateLimitView {
	a.t.Helper()
	var st struct {
		RateLimits []rateLimitView `json:"rate_limits"`
	}
	a.getJSON("/admin/status", &st)
	for _, rl := range st.RateLimits {
		if rl.Endpoint == quotaEP {
			return rl
		}
	}
	return rateLimitView{}
}

// pacer sends GET /api/users/{id} to one app at a steady rate, through up
// to quotaWorkers requests at a time, and counts the answers.
type pacer struct {
	ok, limited, other, dropped atomic.Int64
}

func (p *pacer) run(ctx context.Context, base string, rate float64, wg *sync.WaitGroup) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: quotaWorkers}}
	jobs := make(chan struct{}, 4*quotaWorkers)
	for range quotaWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				resp, err := client.Get(base + "/api/users/" + strconv.Itoa(rand.IntN(1000)))
				if err != nil {
					p.other.Add(1)
					continue
				}
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusOK:
					p.ok.Add(1)
				case http.StatusTooManyRequests:
					p.limited.Add(1)
				default:
					p.other.Add(1)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(jobs)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		start, sent := time.Now(), 0
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for due := int(time.Since(start).Seconds() * rate); sent < due; sent++ {
				select {
				case jobs <- struct{}{}:
				default:
					p.dropped.Add(1) // the workers fell behind: not offered
				}
			}
		}
	}()
}

// redisCommands returns the commands Redis has processed and the calls of
// each command (INFO stats and commandstats).
func redisCommands(t *testing.T, c *redis.Client) (int64, map[string]int64) {
	t.Helper()
	info, err := c.Info(context.Background(), "stats", "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	var total int64 = -1
	per := map[string]int64{}
	for line := range strings.SplitSeq(info, "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "total_commands_processed:"); ok {
			total, _ = strconv.ParseInt(v, 10, 64)
		}
		if rest, ok := strings.CutPrefix(line, "cmdstat_"); ok {
			name, stats, _ := strings.Cut(rest, ":")
			calls, _, _ := strings.Cut(strings.TrimPrefix(stats, "calls="), ",")
			per[name], _ = strconv.ParseInt(calls, 10, 64)
		}
	}
	if total < 0 {
		t.Fatalf("no total_commands_processed in INFO:\n%s", info)
	}
	return total, per
}

// Three instances share a rate limit of 1000 calls/s through one Redis.
// Offered 1.5 times that, 70/20/10 across them, they settle on shares of
// 70/20/10; the cluster admits about 10,000 calls in 10 s and each
// instance its part of the demand, with Redis commands a small fraction
// of the requests served. The warm-up, until every share is within 0.05
// of its part of the offered demand, is not counted.
func TestEndToEndQuota(t *testing.T) {
	if testing.Short() {
		t.Skip("quota run skipped in -short mode")
	}
	srv := redistest.Start(t)
	redisURL := "redis://" + srv.Addr() + "/0"
	cfg := configWith(t, map[string]string{"\nendpoints:\n": fmt.Sprintf(
		"\nendpoints:\n  %q:\n    rate_limit: {rate: %d, burst: 100, shared: true}\n", quotaEP, quotaLimit)})
	apps := make([]*app, len(quotaSplit))
	for i := range apps {
		apps[i] = startApp(t, fmt.Sprintf("app%d", i+1), t.TempDir(), "-config", cfg, "-traffic=false", "-redis-url", redisURL)
	}
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rc.Close()

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	pacers := make([]*pacer, len(apps))
	for i, a := range apps {
		pacers[i] = &pacer{}
		pacers[i].run(ctx, a.base, quotaOverload*quotaLimit*quotaSplit[i], &wg)
	}

	// Warm-up: the endpoint is made on the first request, its demand is
	// counted from the next sync round and read two rounds later.
	views := make([]rateLimitView, len(apps))
	warm := wait.For(t, 30*time.Second, "shares of 70/20/10", func() bool {
		for i, a := range apps {
			views[i] = a.rateLimit()
		}
		for i, v := range views {
			if !v.Shared || v.Share < quotaSplit[i]-0.05 || v.Share > quotaSplit[i]+0.05 {
				return false
			}
		}
		return true
	})
	t.Logf("warm-up (not counted): %v until the shares were %.3f", warm.Round(time.Millisecond), shareList(views))

	before := make([]rateLimitView, len(apps))
	cmds0, per0 := redisCommands(t, rc)
	start := time.Now()
	for i, a := range apps {
		before[i] = a.rateLimit()
	}
	time.Sleep(quotaWindow) // the measured window: load runs meanwhile
	after := make([]rateLimitView, len(apps))
	for i, a := range apps {
		after[i] = a.rateLimit()
	}
	elapsed := time.Since(start)
	cmds1, per1 := redisCommands(t, rc)
	cancel()
	wg.Wait()

	var admitted, served uint64
	allowed := make([]uint64, len(apps))
	for i := range apps {
		allowed[i] = after[i].Allowed - before[i].Allowed
		admitted += allowed[i]
		served += allowed[i] + after[i].Refused - before[i].Refused
	}
	commands := cmds1 - cmds0
	perRequest := float64(commands) / float64(served)
	t.Logf("over %v: the cluster admitted %d of %d requests (limit %d/s: %d expected ±10%%), offered %.0f/s",
		elapsed.Round(time.Millisecond), admitted, served, quotaLimit, int(quotaLimit*quotaWindow.Seconds()), float64(served)/elapsed.Seconds())
	for i, a := range apps {
		t.Logf("%s: offered %.0f/s (%.0f%%), allowed %d = %.1f%% of the cluster's, share %.3f (rate in force %.1f/s), refused %d; the client saw, warm-up included, %d 200, %d 429, %d other, %d not sent",
			a.name, quotaOverload*quotaLimit*quotaSplit[i], 100*quotaSplit[i], allowed[i], 100*float64(allowed[i])/float64(admitted),
			after[i].Share, after[i].Rate, after[i].Refused-before[i].Refused,
			pacers[i].ok.Load(), pacers[i].limited.Load(), pacers[i].other.Load(), pacers[i].dropped.Load())
	}
	t.Logf("Redis: %d commands for %d requests served: %.4f commands per request (%.1f per second)%s",
		commands, served, perRequest, float64(commands)/elapsed.Seconds(), topCommands(per0, per1))

	// Every instance must have been offered more than its share, or the
	// cluster's limit was not what bound it. On a loaded machine the
	// pacers may fall behind (not sent), which changes the split of the
	// demand that reached the apps: the shares follow that demand, as they
	// should, so it is what each instance is measured against.
	want := quotaLimit * quotaWindow.Seconds()
	for i, a := range apps {
		if after[i].Refused == before[i].Refused {
			t.Fatalf("%s refused nothing in %v with a share of %.3f: it was offered less than its share, or not held to it", a.name, quotaWindow, after[i].Share)
		}
	}
	if a := float64(admitted); a < 0.9*want || a > 1.1*want {
		t.Errorf("the cluster admitted %d calls in %v, want %.0f ±10%%", admitted, quotaWindow, want)
	}
	for i, a := range apps {
		demand := float64(allowed[i]+after[i].Refused-before[i].Refused) / float64(served)
		got := float64(allowed[i]) / float64(admitted)
		if got < demand-0.05 || got > demand+0.05 {
			t.Errorf("%s allowed %.1f%% of the cluster's calls with %.1f%% of its demand, want within 5 points", a.name, 100*got, 100*demand)
		}
		// The share is of the last complete interval's demand, which moves
		// with the pacers: a looser bound than the window's sums.
		if sh := after[i].Share; sh < demand-0.1 || sh > demand+0.1 {
			t.Errorf("%s ended with a share of %.3f with %.1f%% of the demand, want within 0.1", a.name, sh, 100*demand)
		}
		if pacers[i].other.Load() > 0 {
			t.Errorf("%s: %d answers neither 200 nor 429", a.name, pacers[i].other.Load())
		}
	}
	// The exchange rides in the sync rounds, a few commands per instance
	// and interval: one command on the request path would make this 1 or
	// more.
	if perRequest >= 0.1 {
		t.Errorf("%.4f Redis commands per request served, want below 0.1", perRequest)
	}
}

func shareList(vs []rateLimitView) []float64 {
	out := make([]float64, len(vs))
	for i, v := range vs {
		out[i] = v.Share
	}
	return out
}

// topCommands lists the commands called between two INFO readings, most
// called first.
func topCommands(before, after map[string]int64) string {
	type row struct {
		name string
		n    int64
	}
	var rows []row
	for name, n := range after {
		if d := n - before[name]; d > 0 {
			rows = append(rows, row{name, d})
		}
	}
	slices.SortFunc(rows, func(a, b row) int { return int(b.n - a.n) })
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "; %s %d", r.name, r.n)
	}
	return b.String()
}
