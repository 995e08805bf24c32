package nethttp

import (
	"context"
	"fmt"
	"github.com/bulwark-go/bulwark/events"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/core"
)

// recordingObserver writes down every call, in order.
type recordingObserver struct {
	mu  sync.Mutex
	log []string
}

func (o *recordingObserver) add(format string, args ...any) {
	o.mu.Lock()
	o.log = append(o.log, fmt.Sprintf(format, args...))
	o.mu.Unlock()
}

func (o *recordingObserver) Rejected(_ context.Context, rej Rejection) {
	o.add("rejected %s %s", rej.Endpoint, rej.Reason)
}
func (o *recordingObserver) Attempt(_ context.Context, ep string, n int, _ time.Duration) {
	o.add("attempt %s %d", ep, n)
}
func (o *recordingObserver) Done(_ context.Context, ep string, out core.Outcome, _ time.Duration) {
	o.add("done %s %s", ep, out)
}
func (o *recordingObserver) Transition(_ context.Context, ep string, from, to events.State) {
	o.add("transition %s %s->%s", ep, from, to)
}

func (o *recordingObserver) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.log, "; ")
}

func TestObserverInbound(t *testing.T) {
	m, _ := core.NewManager(core.ManagerConfig{Defaults: core.EndpointConfig{Breaker: &core.BreakerConfig{FailureThreshold: 1}}})
	obs := &recordingObserver{}
	mw, err := Middleware(Config{Manager: m, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) }))
	for range 2 {
		r := httptest.NewRequest("GET", "/x", nil)
		r.Pattern = "GET /x"
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	want := "done GET /x failure; transition GET /x Closed->Open; rejected GET /x circuit_open"
	if got := obs.String(); got != want {
		t.Fatalf("observer heard %q, want %q", got, want)
	}
}

func TestObserverOutbound(t *testing.T) {
	m, _ := core.NewManager(core.ManagerConfig{Defaults: core.EndpointConfig{
		Breaker: &core.BreakerConfig{FailureThreshold: 2},
		Retry:   &core.RetryConfig{MaxAttempts: 3, InitialBackoff: time.Microsecond, NoJitter: true},
	}})
	obs := &recordingObserver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }))
	defer srv.Close()
	tr, err := NewTransport(TransportConfig{Manager: m, Observer: obs, EndpointKey: func(*http.Request) string { return "up" }})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		if resp, err := tr.RoundTrip(req); err == nil {
			resp.Body.Close()
		}
	}
	want := "attempt up 1; done up failure; attempt up 2; done up failure; transition up Closed->Open; rejected up circuit_open"
	if got := obs.String(); got != want {
		t.Fatalf("observer heard %q, want %q", got, want)
	}
}
