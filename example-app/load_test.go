package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The load run: loadWorkers concurrent clients, each sending one request
// after another over keep-alive connections, for loadDuration after a short
// warm-up that is not counted.
const (
	loadWorkers  = 32
	loadUsers    = 100 // X-User values, spread uniformly
	loadWarmUp   = 300 * time.Millisecond
	loadDuration = 3 * time.Second
)

// TestLoadFullStackVersusBare sends the same bounded load to GET
// /api/users/{id} of the app with every Bulwark guard on, then of the bare
// service (-bare), and reports requests per second and latency for both.
// No request may fail: any 5xx other than a rejection by Bulwark's limits
// fails the test, and the rejections (429/503 with Bulwark's JSON body) are
// counted apart. To print just the figures:
//
//	go test -run TestLoad -v ./example-app/
func TestLoadFullStackVersusBare(t *testing.T) {
	if testing.Short() {
		t.Skip("load run skipped in -short mode")
	}
	full := startApp(t, "full stack", t.TempDir(), "-upstream", "healthy", "-traffic=false")
	fullRes := runLoad(full.base)
	full.stop()
	bare := startApp(t, "bare", t.TempDir(), "-bare", "-upstream", "healthy", "-traffic=false")
	bareRes := runLoad(bare.base)
	bare.stop()

	note := ""
	if raceEnabled {
		note = " (test binary built with -race: the load generator is slowed down, so these figures understate both; run without -race for real ones)"
	}
	t.Logf("GET /api/users/{id}, %d workers, %d users, %v after a %v warm-up, keep-alive, app and load generator on one machine%s:\n"+
		"| stack | requests | req/s | p50 | p99 | max | 200 | rejected (429/503) | other |\n"+
		"|---|---:|---:|---:|---:|---:|---:|---:|---:|\n%s\n%s",
		loadWorkers, loadUsers, loadDuration, loadWarmUp, note, fullRes.row("Bulwark full stack"), bareRes.row("bare (-bare)"))
	if fullRes.ok > 0 && bareRes.ok > 0 {
		t.Logf("full stack vs bare: %.0f%% of the throughput, p50 %s, p99 %s",
			100*fullRes.rate()/bareRes.rate(),
			signed(fullRes.percentile(50)-bareRes.percentile(50)), signed(fullRes.percentile(99)-bareRes.percentile(99)))
	}
	// Rejections are legitimate answers, but not expected here: with 32
	// workers over 100 users a user rarely has more than its 4 (+2 queued)
	// requests in flight, and each request holds an endpoint bulkhead slot
	// (16, +8 queued for up to 500ms) only for the microseconds the handler
	// runs.
	t.Logf("full stack rejections by Bulwark's limits: %d %v (legitimate, but not expected at this load); bare: %d",
		fullRes.rejected, fullRes.reasons, bareRes.rejected)

	for _, r := range []struct {
		name string
		res  *loadResult
	}{{"full stack", fullRes}, {"bare", bareRes}} {
		if r.res.ok == 0 {
			t.Errorf("%s: no successful request", r.name)
		}
		if r.res.other > 0 {
			t.Errorf("%s: %d answers that are neither 200 nor a limit's rejection %v; first: %s", r.name, r.res.other, r.res.status, r.res.firstOther)
		}
		if r.res.errors > 0 {
			t.Errorf("%s: %d requests failed; first: %s", r.name, r.res.errors, r.res.firstErr)
		}
	}
	if bareRes.rejected > 0 {
		t.Errorf("bare: %d rejections from a service without Bulwark", bareRes.rejected)
	}
}

// loadResult is what one load run saw.
type loadResult struct {
	elapsed    time.Duration
	latencies  []time.Duration // of the 200s, sorted
	ok         int
	rejected   int            // 429/503 with a Bulwark rejection body
	reasons    map[string]int // rejections by reason
	other      int            // any other answer
	status     map[int]int    // every answer by status
	firstOther string
	errors     int // transport errors
	firstErr   string
}

func (r *loadResult) rate() float64 {
	return float64(r.ok+r.rejected+r.other) / r.elapsed.Seconds()
}

func (r *loadResult) percentile(p int) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	i := (len(r.latencies)*p+99)/100 - 1
	return r.latencies[max(i, 0)]
}

func (r *loadResult) row(name string) string {
	ms := func(d time.Duration) string {
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + " ms"
	}
	var last time.Duration
	if n := len(r.latencies); n > 0 {
		last = r.latencies[n-1]
	}
	return fmt.Sprintf("| %s | %d | %.0f | %s | %s | %s | %d | %d | %d |",
		name, r.ok+r.rejected+r.other, r.rate(), ms(r.percentile(50)), ms(r.percentile(99)), ms(last), r.ok, r.rejected, r.other)
}

// signed formats a difference with its sign.
func signed(d time.Duration) string {
	if d < 0 {
		return "-" + (-d).Round(time.Microsecond).String()
	}
	return "+" + d.Round(time.Microsecond).String()
}

// rejectionReasons are the "error" values of Bulwark's rejection bodies.
var rejectionReasons = map[string]bool{"circuit_open": true, "bulkhead_full": true, "bulkhead_timeout": true, "user_limit": true}

// runLoad sends GET /api/users/{id} from loadWorkers goroutines for the
// warm-up and then loadDuration, counting only requests sent after the
// warm-up.
func runLoad(base string) *loadResult {
	transport := &http.Transport{MaxIdleConns: 2 * loadWorkers, MaxIdleConnsPerHost: 2 * loadWorkers, DisableCompression: true}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}

	measureFrom := time.Now().Add(loadWarmUp)
	end := measureFrom.Add(loadDuration)
	total := &loadResult{reasons: map[string]int{}, status: map[int]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range loadWorkers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			res := &loadResult{reasons: map[string]int{}, status: map[int]int{}}
			for {
				start := time.Now()
				if !start.Before(end) {
					break
				}
				counted := !start.Before(measureFrom)
				req, _ := http.NewRequest(http.MethodGet, base+"/api/users/"+strconv.Itoa(rng.IntN(10_000)), nil)
				req.Header.Set("X-User", "user-"+strconv.Itoa(rng.IntN(loadUsers)))
				resp, err := client.Do(req)
				var body []byte
				if err == nil {
					body, err = io.ReadAll(resp.Body)
					_ = resp.Body.Close()
				}
				took := time.Since(start)
				if !counted {
					continue
				}
				if err != nil {
					if res.errors++; res.firstErr == "" {
						res.firstErr = err.Error()
					}
					continue
				}
				res.status[resp.StatusCode]++
				switch reason := rejection(resp.StatusCode, body); {
				case resp.StatusCode == http.StatusOK:
					res.ok++
					res.latencies = append(res.latencies, took)
				case reason != "":
					res.rejected++
					res.reasons[reason]++
				default:
					if res.other++; res.firstOther == "" {
						res.firstOther = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
					}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			total.ok += res.ok
			total.rejected += res.rejected
			total.other += res.other
			total.errors += res.errors
			total.latencies = append(total.latencies, res.latencies...)
			for k, v := range res.reasons {
				total.reasons[k] += v
			}
			for k, v := range res.status {
				total.status[k] += v
			}
			if total.firstOther == "" {
				total.firstOther = res.firstOther
			}
			if total.firstErr == "" {
				total.firstErr = res.firstErr
			}
		})
	}
	wg.Wait()
	total.elapsed = loadDuration
	slices.Sort(total.latencies)
	return total
}

// rejection returns the reason of a Bulwark rejection (429 or 503 with its
// JSON body), or "".
func rejection(status int, body []byte) string {
	if status != http.StatusTooManyRequests && status != http.StatusServiceUnavailable {
		return ""
	}
	var b struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &b) != nil || !rejectionReasons[b.Error] {
		return ""
	}
	return b.Error
}
