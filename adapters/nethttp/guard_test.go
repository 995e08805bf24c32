package nethttp

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/core"
)

// configFields returns the Field of every *core.ConfigError joined in err,
// sorted.
func configFields(err error) []string {
	var fields []string
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var ce *core.ConfigError
		if errors.As(e, &ce) {
			fields = append(fields, ce.Field)
		}
	}
	walk(err)
	slices.Sort(fields)
	return fields
}

// nilRoundTripper is a RoundTripper type whose nil value would panic.
type nilRoundTripper struct{ base http.RoundTripper }

func (n *nilRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	return n.base.RoundTrip(r)
}

func TestConfigErrors(t *testing.T) {
	m, _ := core.NewManager(core.ManagerConfig{})
	withUsers, _ := core.NewManager(core.ManagerConfig{PerUser: &core.PerUserConfig{}})
	user := UserFromHeader("X-User")
	guard := func(cfg Config) func() error {
		return func() error { _, err := NewGuard(cfg); return err }
	}
	middleware := func(cfg Config) func() error {
		return func() error { _, err := Middleware(cfg); return err }
	}
	transport := func(cfg TransportConfig) func() error {
		return func() error { _, err := NewTransport(cfg); return err }
	}
	for _, c := range []struct {
		name   string
		build  func() error
		fields []string // nil: valid
	}{
		{"NewGuard without Manager", guard(Config{UserKey: user}), []string{"nethttp.Config.Manager"}},
		{"Middleware without Manager", middleware(Config{}), []string{"nethttp.Config.Manager"}},
		{"NewGuard per-user without UserKey", guard(Config{Manager: withUsers}), []string{"nethttp.Config.UserKey"}},
		{"Middleware per-user without UserKey", middleware(Config{Manager: withUsers}), []string{"nethttp.Config.UserKey"}},
		{"NewGuard per-user with UserKey", guard(Config{Manager: withUsers, UserKey: user}), nil},
		{"NewGuard UserKey without per-user", guard(Config{Manager: m, UserKey: user}), nil},
		{"Middleware minimal", middleware(Config{Manager: m}), nil},
		{"NewTransport without Manager", transport(TransportConfig{}), []string{"nethttp.TransportConfig.Manager"}},
		{"NewTransport MaxReplayBody", transport(TransportConfig{Manager: m, MaxReplayBody: -2}), []string{"nethttp.TransportConfig.MaxReplayBody"}},
		{"NewTransport typed nil Base", transport(TransportConfig{Manager: m, Base: (*nilRoundTripper)(nil)}), []string{"nethttp.TransportConfig.Base"}},
		{"NewTransport every bad field", transport(TransportConfig{MaxReplayBody: -5, Base: (*http.Transport)(nil)}),
			[]string{"nethttp.TransportConfig.Base", "nethttp.TransportConfig.Manager", "nethttp.TransportConfig.MaxReplayBody"}},
		{"NewTransport never buffers", transport(TransportConfig{Manager: m, MaxReplayBody: -1}), nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.build()
			if c.fields == nil {
				if err != nil {
					t.Fatalf("a valid config refused: %v", err)
				}
				return
			}
			var ce *core.ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, core.ErrInvalidConfig) {
				t.Fatalf("error %v (%T), want *core.ConfigError values", err, err)
			}
			if got := configFields(err); !slices.Equal(got, c.fields) {
				t.Fatalf("fields %q, want %q (error: %v)", got, c.fields, err)
			}
			for _, f := range c.fields {
				if !strings.Contains(err.Error(), f) {
					t.Errorf("the message does not name %s: %v", f, err)
				}
			}
		})
	}
}

// The Ticket API as the echo and gin adapters use it: Enter, serve with
// Writer and Request (or the router's own writer), then Finish with the
// status the client got, or 0 for what Writer saw.
func TestTicket(t *testing.T) {
	m, clock := newManager(t, core.ManagerConfig{
		Defaults: core.EndpointConfig{
			Breaker:  &core.BreakerConfig{FailureThreshold: 100},
			Bulkhead: &core.BulkheadConfig{},
			SLO:      &core.SLOConfig{},
		},
		PerUser: &core.PerUserConfig{},
	})
	g, err := NewGuard(Config{Manager: m, UserKey: UserFromHeader("X-User")})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/orders/1", nil)
	req.Header.Set("X-User", "alice")
	e := endpoint(t, m, "GET /orders/:id")

	// An empty endpoint is unguarded: a nil Ticket, whose Finish does nothing.
	tk, ok := g.Enter(httptest.NewRecorder(), req, "")
	if !ok || tk != nil {
		t.Fatalf("unkeyed: %v %v", tk, ok)
	}
	tk.Finish(500, true)

	for _, c := range []struct {
		name     string
		write    int // status written through Writer; 0: none
		finish   int
		panicked bool
		failed   bool
	}{
		{"status the writer saw", 503, 0, false, true},
		{"nothing written is 200", 0, 0, false, false},
		{"status given wins", 200, 500, false, true},
		{"a 4xx given", 0, 404, false, false},
		{"a panic fails", 200, 200, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := e.Breaker().Snapshot()
			sloBefore := e.SLO().Status()
			rec := httptest.NewRecorder()
			tk, ok := g.Enter(rec, req, "GET /orders/:id")
			if !ok || tk == nil {
				t.Fatal("refused")
			}
			if tk.Request() != req {
				t.Error("Request is not the request entered")
			}
			// The permits are held from Enter to Finish.
			us, _ := m.PerUser().UserStats("alice")
			if e.Bulkhead().Stats().Active != 1 || us.Active != 1 {
				t.Errorf("while serving: bulkhead active %d, user active %d", e.Bulkhead().Stats().Active, us.Active)
			}
			if c.write != 0 {
				tk.Writer().WriteHeader(c.write)
				if rec.Code != c.write {
					t.Errorf("the writer did not pass the status on: %d", rec.Code)
				}
			}
			clock.Advance(40 * time.Millisecond)
			tk.Finish(c.finish, c.panicked)
			after := e.Breaker().Snapshot()
			if failed := after.FailedRequests - before.FailedRequests; failed != map[bool]int64{true: 1}[c.failed] ||
				after.TotalRequests-before.TotalRequests != 1 {
				t.Errorf("breaker counted %d failed of %d, want failure %v", failed, after.TotalRequests-before.TotalRequests, c.failed)
			}
			slo := e.SLO().Status()
			if slo.Total-sloBefore.Total != 1 || (slo.Failed-sloBefore.Failed == 1) != c.failed {
				t.Errorf("SLO went from %+v to %+v", sloBefore, slo)
			}
			us, _ = m.PerUser().UserStats("alice")
			if e.Bulkhead().Stats().Active != 0 || us.Active != 0 {
				t.Errorf("after Finish: bulkhead active %d, user active %d", e.Bulkhead().Stats().Active, us.Active)
			}
		})
	}
	// Every request's duration was measured once, on the Manager's clock.
	if d := e.Durations(); d.Count != 5 || d.Sum != 5*40*time.Millisecond {
		t.Errorf("durations: %d, sum %v", d.Count, d.Sum)
	}

	// A refusal is answered by Enter itself; nothing is left to finish.
	e.Breaker().ForceOpen("maintenance")
	rec := httptest.NewRecorder()
	if tk, ok := g.Enter(rec, req, "GET /orders/:id"); ok || tk != nil {
		t.Fatalf("open breaker: %v %v", tk, ok)
	}
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), `"error":"circuit_open"`) {
		t.Fatalf("refusal: %d %s", rec.Code, rec.Body)
	}
	us, _ := m.PerUser().UserStats("alice")
	if e.Bulkhead().Stats().Active != 0 || us.Active != 0 {
		t.Errorf("a refusal kept permits: bulkhead active %d, user active %d", e.Bulkhead().Stats().Active, us.Active)
	}
}

// hijackWriter is a ResponseWriter whose connection can be taken over.
type hijackWriter struct {
	*httptest.ResponseRecorder
	conn net.Conn
}

func (h *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return h.conn, bufio.NewReadWriter(bufio.NewReader(h.conn), bufio.NewWriter(h.conn)), nil
}

// A hijacked connection (a WebSocket, say) is a success whose duration
// ends when it is taken over: what follows is the connection's life, not
// the request's.
func TestTicketHijackEndsTheDuration(t *testing.T) {
	m, clock := newManager(t, core.ManagerConfig{})
	g, _ := NewGuard(Config{Manager: m})
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	tk, ok := g.Enter(&hijackWriter{httptest.NewRecorder(), c1}, httptest.NewRequest("GET", "/ws", nil), "GET /ws")
	if !ok {
		t.Fatal("refused")
	}
	clock.Advance(20 * time.Millisecond)
	conn, _, err := http.NewResponseController(tk.Writer()).Hijack()
	if err != nil || conn != c1 {
		t.Fatalf("hijack through the writer: %v", err)
	}
	clock.Advance(time.Hour) // the connection lives on
	tk.Finish(0, false)
	e, _ := m.Lookup("GET /ws")
	if s := e.Breaker().Snapshot(); s.SuccessfulRequests != 1 {
		t.Errorf("a hijacked request: %+v", s)
	}
	if d := e.Durations(); d.Sum != 20*time.Millisecond {
		t.Errorf("duration %v, want 20ms (until the hijack)", d.Sum)
	}
}
