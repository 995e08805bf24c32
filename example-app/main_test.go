package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/core"
)

func TestGuardedRouteOpensAndAnswers503(t *testing.T) {
	m, err := core.NewManager(core.ManagerConfig{
		Breaker: core.Config{FailureThreshold: 2, Timeout: 7 * time.Second},
		Clock:   core.NewFakeClock(time.Unix(0, 0)),
	})
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	h := guarded(m, "GET /x", func(w http.ResponseWriter, r *http.Request) error {
		calls++
		return errUpstream
	})
	for range 2 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
		if rec.Code != http.StatusBadGateway {
			t.Fatalf("status %d", rec.Code)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "7" || calls != 2 {
		t.Fatalf("open breaker: status %d, Retry-After %q, calls %d", rec.Code, rec.Header().Get("Retry-After"), calls)
	}
}

func TestBadFlagsExitTwo(t *testing.T) {
	if code := run([]string{"-fail-rate", "3"}); code != 2 {
		t.Fatalf("exit %d", code)
	}
	if code := run([]string{"-nope"}); code != 2 {
		t.Fatalf("exit %d", code)
	}
}
