package nethttp

import (
	"context"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/internal/wait"
)

// These tests run over real sockets: an http.Server with the middleware in
// front of a handler, and a Transport in front of an http.Server upstream.

// serve runs h on a real server on a free port until the test ends, and
// returns its base URL.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	})
	return "http://" + ln.Addr().String()
}

// A handler that sleeps well past its endpoint's timeout, paying no heed to
// its context: the client gets the 503 at the deadline, not when the
// handler returns, and once the handler has returned nothing of the
// request is left running.
func TestEndToEndHandlerPastItsTimeout(t *testing.T) {
	const timeout, sleep = 100 * time.Millisecond, 1500 * time.Millisecond
	m, err := core.NewManager(core.ManagerConfig{Defaults: core.EndpointConfig{Timeout: &core.TimeoutConfig{Request: timeout}}})
	if err != nil {
		t.Fatal(err)
	}
	mw, err := Middleware(Config{Manager: m})
	if err != nil {
		t.Fatal(err)
	}
	returned := make(chan struct{})
	mux := http.NewServeMux()
	mux.Handle("GET /report", mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(returned)
		time.Sleep(sleep) // deaf to r.Context()
		_, _ = w.Write([]byte("late"))
	})))
	base := serve(t, mux)
	client := &http.Client{Transport: &http.Transport{}}
	running := goleak.IgnoreCurrent() // the server's loop, the clock

	start := time.Now()
	resp, err := client.Get(base + "/report")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("got %d %q, want 503 with Retry-After", resp.StatusCode, body)
	}
	// In time: the deadline plus the wheel's coarseness and a loaded
	// machine's scheduling, far from the handler's 1.5s.
	if took >= sleep/2 {
		t.Fatalf("the 503 came after %v, want it at about the %v deadline", took, timeout)
	}
	t.Logf("503 after %v (timeout %v, handler sleeps %v)", took.Round(time.Millisecond), timeout, sleep)

	<-returned
	client.CloseIdleConnections()
	// The middleware reports the call just after the handler returns.
	br := mustEndpoint(t, m, "GET /report").Breaker()
	wait.For(t, 5*time.Second, "the timed-out call to be reported", func() bool { return br.Snapshot().FailedRequests > 0 })
	s := br.Snapshot()
	if s.Timeouts != 1 || s.FailedRequests != 1 {
		t.Fatalf("breaker: %d timeouts, %d failures, want 1 and 1", s.Timeouts, s.FailedRequests)
	}
	// The server is still up; nothing of the request is left: no
	// goroutine of the middleware's, the connection's ones gone with it.
	if err := goleak.Find(running, goleak.IgnoreTopFunction("github.com/bulwark-go/bulwark/core.(*sysClock).tick")); err != nil {
		t.Fatal(err)
	}
}

// An upstream with a slow tail (every twentieth call takes 200ms, the
// rest 2ms) through the Transport, with and without hedging: hedging cuts
// the p99 to at most a third, for at most 10% more requests.
//
// Latency is what it measures, so it runs without the race detector, which
// slows the fast calls past the hedge delay.
func TestEndToEndHedgingCutsTheTail(t *testing.T) {
	if raceEnabled {
		t.Skip("measures latency: run without -race")
	}
	var served atomic.Int64
	upstream := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := 2 * time.Millisecond
		if served.Add(1)%20 == 0 {
			d = 200 * time.Millisecond
		}
		select {
		case <-time.After(d):
			_, _ = w.Write([]byte("quote"))
		case <-r.Context().Done(): // a hedge won: the slow copy is cancelled
		}
	}))
	const calls, workers = 600, 12
	run := func(hedge *core.HedgeConfig) (p99 time.Duration, sent int64) {
		t.Helper()
		m, err := core.NewManager(core.ManagerConfig{Defaults: core.EndpointConfig{Hedge: hedge}})
		if err != nil {
			t.Fatal(err)
		}
		base := &http.Transport{MaxIdleConnsPerHost: 2 * workers}
		defer base.CloseIdleConnections()
		tr, err := NewTransport(TransportConfig{Manager: m, Base: base})
		if err != nil {
			t.Fatal(err)
		}
		client := &http.Client{Transport: tr}
		before := served.Load()
		lat := make([]time.Duration, calls)
		var next atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for i := next.Add(1) - 1; i < calls; i = next.Add(1) - 1 {
					start := time.Now()
					resp, err := client.Get(upstream + "/quotes/ACME")
					if err != nil {
						t.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					lat[i] = time.Since(start)
				}
			})
		}
		wg.Wait()
		slices.Sort(lat)
		return lat[calls*99/100], served.Load() - before
	}
	plainP99, plainSent := run(nil)
	hedgedP99, hedgedSent := run(&core.HedgeConfig{Delay: 20 * time.Millisecond, MaxRatio: 0.1})
	extra := float64(hedgedSent-calls) / calls
	t.Logf("p99 %v without hedging (%d requests), %v with (%d requests, %.1f%% extra)",
		plainP99.Round(time.Millisecond), plainSent, hedgedP99.Round(time.Millisecond), hedgedSent, 100*extra)
	if plainSent != calls {
		t.Fatalf("without hedging the upstream saw %d requests for %d calls", plainSent, calls)
	}
	if hedgedP99 > plainP99/3 {
		t.Fatalf("hedging left the p99 at %v, more than a third of %v", hedgedP99, plainP99)
	}
	if extra > 0.10 {
		t.Fatalf("hedging sent %.1f%% extra requests, more than 10%%", 100*extra)
	}
}
