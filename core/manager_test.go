package core

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestManagerGetOrCreateWithOverrides(t *testing.T) {
	m, err := NewManager(ManagerConfig{
		Breaker:   Config{FailureThreshold: 3},
		Overrides: map[string]Config{"GET /slow": {Timeout: 5 * time.Second}},
		Clock:     NewFakeClock(t0),
	})
	if err != nil {
		t.Fatal(err)
	}
	a, err := m.Breaker("GET /users/{id}")
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := m.Breaker("GET /users/{id}"); again != a {
		t.Fatal("second get made a new breaker")
	}
	if a.Config().FailureThreshold != 3 {
		t.Fatalf("default config not applied: %+v", a.Config())
	}
	slow, _ := m.Breaker("GET /slow")
	if c := slow.Config(); c.Timeout != 5*time.Second || c.FailureThreshold != 5 {
		t.Fatalf("override %+v", c)
	}
	if _, ok := m.Lookup("GET /nope"); ok {
		t.Fatal("Lookup created a breaker")
	}
	names := []string{}
	for _, s := range m.Snapshots() {
		names = append(names, s.Endpoint)
	}
	if strings.Join(names, ",") != "GET /slow,GET /users/{id}" {
		t.Fatalf("snapshots %v", names)
	}
}

func TestManagerIsBounded(t *testing.T) {
	m, err := NewManager(ManagerConfig{MaxEndpoints: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := m.Breaker(fmt.Sprint("e", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Breaker("e3"); !errors.Is(err, ErrTooManyEndpoints) {
		t.Fatalf("4th endpoint: %v", err)
	}
	if _, err := m.Breaker("e1"); err != nil {
		t.Fatalf("existing endpoint refused: %v", err)
	}
}

func TestManagerRejectsBadNames(t *testing.T) {
	m, _ := NewManager(ManagerConfig{})
	for _, name := range []string{"", strings.Repeat("x", 257), "a\x00b", "bad\xff"} {
		if _, err := m.Breaker(name); !errors.Is(err, ErrInvalidEndpoint) {
			t.Errorf("%q: %v", name, err)
		}
	}
}

func TestManagerConfigValidate(t *testing.T) {
	err := ManagerConfig{
		MaxEndpoints: -1,
		Breaker:      Config{Timeout: -1},
		Overrides:    map[string]Config{"GET /x": {FailureThreshold: -2}},
	}.Validate()
	for _, want := range []string{"ManagerConfig.MaxEndpoints", "Config.Timeout", "ManagerConfig.Overrides[GET /x].FailureThreshold"} {
		if !strings.Contains(fmt.Sprint(err), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
	if _, err := NewManager(ManagerConfig{MaxEndpoints: -1}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("NewManager: %v", err)
	}
}

func TestOnBreakerSeesEveryBreakerOnce(t *testing.T) {
	m, _ := NewManager(ManagerConfig{})
	_, _ = m.Breaker("a")
	seen := map[string]int{}
	m.OnBreaker(func(b *Breaker) { seen[b.Name()]++ })
	_, _ = m.Breaker("b")
	_, _ = m.Breaker("b")
	if seen["a"] != 1 || seen["b"] != 1 || len(seen) != 2 {
		t.Fatalf("seen %v", seen)
	}
}

func TestManagerBulkheads(t *testing.T) {
	m, err := NewManager(ManagerConfig{
		Bulkhead:          BulkheadConfig{MaxConcurrentRequests: 7},
		BulkheadOverrides: map[string]BulkheadConfig{"POST /upload": {MaxConcurrentRequests: 2}},
		MaxEndpoints:      2,
	})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := m.Bulkhead("GET /a")
	if again, _ := m.Bulkhead("GET /a"); again != a || a.Config().MaxConcurrentRequests != 7 {
		t.Fatalf("bulkhead %+v", a.Config())
	}
	up, _ := m.Bulkhead("POST /upload")
	if up.Config().MaxConcurrentRequests != 2 {
		t.Fatalf("override %+v", up.Config())
	}
	if _, err := m.Bulkhead("GET /c"); !errors.Is(err, ErrTooManyEndpoints) {
		t.Fatalf("bound: %v", err)
	}
	if len(m.Bulkheads()) != 2 {
		t.Fatal("Bulkheads")
	}
	if _, ok := m.LookupBulkhead("GET /zzz"); ok {
		t.Fatal("lookup created one")
	}
	err = ManagerConfig{BulkheadOverrides: map[string]BulkheadConfig{"x": {MaxConcurrentRequests: -5}}}.Validate()
	if !strings.Contains(fmt.Sprint(err), "ManagerConfig.BulkheadOverrides[x].MaxConcurrentRequests") {
		t.Fatalf("override error %v", err)
	}
}
