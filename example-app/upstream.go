package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"
)

// Upstream modes. "flap" cycles through the others on a schedule.
const (
	modeHealthy = "healthy"
	modeSlow    = "slow"
	modeFailing = "failing"
	modeFlap    = "flap"
)

// flapSchedule is what the upstream does in "flap" mode, in a loop.
var flapSchedule = []struct {
	mode string
	d    time.Duration
}{
	{modeHealthy, 45 * time.Second},
	{modeSlow, 15 * time.Second},
	{modeHealthy, 20 * time.Second},
	{modeFailing, 25 * time.Second},
}

// upstream is the quote service the app calls through its outbound
// transport. It runs in the same process, on its own port, and flaps
// between healthy, slow and failing so that there is something to see.
type upstream struct {
	mu      sync.Mutex
	mode    string
	started time.Time
	srv     *http.Server
	url     string
}

func validMode(m string) bool {
	return m == modeHealthy || m == modeSlow || m == modeFailing || m == modeFlap
}

func startUpstream(mode string) (*upstream, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("upstream: %w", err)
	}
	u := &upstream{mode: mode, started: time.Now(), url: "http://" + ln.Addr().String()}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /quotes/{symbol}", u.quote)
	mux.HandleFunc("GET /healthz", u.health)
	u.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = u.srv.Serve(ln) }()
	return u, nil
}

func (u *upstream) setMode(m string) {
	u.mu.Lock()
	u.mode, u.started = m, time.Now()
	u.mu.Unlock()
}

// current returns what the upstream does right now.
func (u *upstream) current() string {
	u.mu.Lock()
	mode, started := u.mode, u.started
	u.mu.Unlock()
	if mode != modeFlap {
		return mode
	}
	var cycle time.Duration
	for _, s := range flapSchedule {
		cycle += s.d
	}
	at := time.Since(started) % cycle
	for _, s := range flapSchedule {
		if at < s.d {
			return s.mode
		}
		at -= s.d
	}
	return modeHealthy
}

func (u *upstream) quote(w http.ResponseWriter, r *http.Request) {
	switch u.current() {
	case modeFailing:
		http.Error(w, "quote engine unavailable", http.StatusServiceUnavailable)
		return
	case modeSlow:
		select {
		case <-time.After(time.Duration(600+rand.IntN(400)) * time.Millisecond):
		case <-r.Context().Done():
			return
		}
	default:
		time.Sleep(time.Duration(2+rand.IntN(8)) * time.Millisecond)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"symbol": r.PathValue("symbol"),
		"price":  100 + rand.Float64()*50,
		"at":     time.Now().UTC(),
	})
}

func (u *upstream) health(w http.ResponseWriter, _ *http.Request) {
	if u.current() == modeFailing {
		http.Error(w, "failing", http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ok"))
}

func (u *upstream) close(ctx context.Context) { _ = u.srv.Shutdown(ctx) }
