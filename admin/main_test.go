package admin_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/bulwark-go/bulwark/admin"
	"github.com/bulwark-go/bulwark/core"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The system clock's coarse ticker stops itself after a second idle.
		goleak.IgnoreTopFunction("github.com/bulwark-go/bulwark/core.(*sysClock).tick"),
	)
}

var seedTime = time.Date(2025, 10, 8, 12, 0, 0, 0, time.UTC)

const testToken = "s3cret-token-0123456789"

// fixture is a Manager on a fake clock, a Handler and a test server.
type fixture struct {
	clock *core.FakeClock
	m     *core.Manager
	h     *admin.Handler
	srv   *httptest.Server
}

func newManager(t testing.TB, clock core.Clock) *core.Manager {
	t.Helper()
	m, err := core.NewManager(core.ManagerConfig{
		Clock:   clock,
		Breaker: core.Config{FailureThreshold: 3, Timeout: 30 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// newFixture serves a handler for cfg (its Manager filled in) at the root.
func newFixture(t testing.TB, cfg admin.Config) *fixture {
	t.Helper()
	f := &fixture{clock: core.NewFakeClock(seedTime)}
	if cfg.Manager == nil {
		cfg.Manager = newManager(t, f.clock)
	}
	f.m = cfg.Manager
	if cfg.PingInterval == 0 {
		cfg.PingInterval = time.Hour // tests that want pings set it
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.SnapshotInterval == 0 {
		cfg.SnapshotInterval = time.Hour
	}
	h, err := admin.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	f.srv = httptest.NewServer(h)
	t.Cleanup(func() {
		f.srv.Close()
		h.Close()
	})
	return f
}

func (f *fixture) breaker(t testing.TB, name string) *core.Breaker {
	t.Helper()
	b, err := f.m.Breaker(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type response struct {
	code int
	hdr  http.Header
	body []byte
}

func (r response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r response) errorText(t testing.TB) string {
	t.Helper()
	var e admin.ErrorResponse
	r.json(t, &e)
	if e.Error == "" {
		t.Fatalf("no error message in %s", r.body)
	}
	return e.Error
}

func do(t testing.TB, method, url, token, body string, hdr ...string) response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
