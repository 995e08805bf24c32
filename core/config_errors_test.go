package core

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// configErrors returns every *ConfigError in err, a single one or a join.
func configErrors(err error) []*ConfigError {
	var out []*ConfigError
	var walk func(error)
	walk = func(e error) {
		switch x := e.(type) {
		case nil:
		case *ConfigError:
			out = append(out, x)
		case interface{ Unwrap() []error }:
			for _, inner := range x.Unwrap() {
				walk(inner)
			}
		case interface{ Unwrap() error }:
			walk(x.Unwrap())
		}
	}
	walk(err)
	return out
}

// TestConfigErrors gives every constructor a config with several bad
// fields and checks that each is reported, under its full path, at once.
func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name   string
		build  func() (any, error)
		fields []string // every bad field, once each
	}{
		{
			name: "NewBreaker/all",
			build: func() (any, error) {
				return NewBreaker(BreakerConfig{
					FailureThreshold: -1, SuccessThreshold: -1, Timeout: time.Nanosecond, HalfOpenMaxRequests: 20_000,
					FailureRateThreshold: 101, MinRequestsForRate: -1, RollingWindow: time.Millisecond, WindowBuckets: 5000,
					SlowCallDuration: -1, SlowCallRateThreshold: -1, OpenBackoffMultiplier: 0.5,
					MaxOpenDuration: 8 * 24 * time.Hour, ProbeTimeout: -1,
				})
			},
			fields: []string{
				"core.BreakerConfig.FailureThreshold", "core.BreakerConfig.SuccessThreshold", "core.BreakerConfig.Timeout",
				"core.BreakerConfig.HalfOpenMaxRequests", "core.BreakerConfig.FailureRateThreshold",
				"core.BreakerConfig.MinRequestsForRate", "core.BreakerConfig.RollingWindow", "core.BreakerConfig.WindowBuckets",
				"core.BreakerConfig.SlowCallDuration", "core.BreakerConfig.SlowCallRateThreshold",
				"core.BreakerConfig.OpenBackoffMultiplier", "core.BreakerConfig.MaxOpenDuration", "core.BreakerConfig.ProbeTimeout",
			},
		},
		{
			// The cross-field rules still run when another field is bad.
			name: "NewBreaker/cross-field",
			build: func() (any, error) {
				return NewBreaker(BreakerConfig{
					FailureThreshold: -1, SuccessThreshold: 4, Timeout: time.Minute, MaxOpenDuration: time.Second,
					RollingWindow: 10 * time.Millisecond, WindowBuckets: 100,
				})
			},
			fields: []string{
				"core.BreakerConfig.FailureThreshold", "core.BreakerConfig.SuccessThreshold",
				"core.BreakerConfig.MaxOpenDuration", "core.BreakerConfig.WindowBuckets",
			},
		},
		{
			name: "NewBulkhead",
			build: func() (any, error) {
				return NewBulkhead(BulkheadConfig{MaxConcurrentRequests: -1, MaxQueueSize: -2, QueueTimeout: time.Microsecond, RetryAfter: 2 * time.Hour})
			},
			fields: []string{
				"core.BulkheadConfig.MaxConcurrentRequests", "core.BulkheadConfig.MaxQueueSize",
				"core.BulkheadConfig.QueueTimeout", "core.BulkheadConfig.RetryAfter",
			},
		},
		{
			name: "NewPerUserBulkhead",
			build: func() (any, error) {
				return NewPerUserBulkhead(PerUserConfig{
					Bulkhead: BulkheadConfig{MaxConcurrentRequests: 2_000_000, QueueTimeout: -1, RetryAfter: -1},
					MaxUsers: -1, IdleTimeout: 25 * time.Hour, TopN: 10_001, Shards: 48,
				})
			},
			fields: []string{
				"core.PerUserConfig.Bulkhead.MaxConcurrentRequests", "core.PerUserConfig.Bulkhead.QueueTimeout",
				"core.PerUserConfig.Bulkhead.RetryAfter", "core.PerUserConfig.MaxUsers", "core.PerUserConfig.IdleTimeout",
				"core.PerUserConfig.TopN", "core.PerUserConfig.Shards",
			},
		},
		{
			name: "NewRetry/all",
			build: func() (any, error) {
				return NewRetry(RetryConfig{MaxAttempts: 1001, InitialBackoff: -1, MaxBackoff: 25 * time.Hour,
					BackoffMultiplier: 0.5, JitterFactor: 0.2, NoJitter: true})
			},
			fields: []string{
				"core.RetryConfig.MaxAttempts", "core.RetryConfig.InitialBackoff", "core.RetryConfig.MaxBackoff",
				"core.RetryConfig.BackoffMultiplier", "core.RetryConfig.JitterFactor",
			},
		},
		{
			name: "NewRetry/cross-field",
			build: func() (any, error) {
				return NewRetry(RetryConfig{MaxAttempts: -1, InitialBackoff: time.Second, MaxBackoff: time.Millisecond, JitterFactor: math.NaN()})
			},
			fields: []string{"core.RetryConfig.MaxAttempts", "core.RetryConfig.MaxBackoff", "core.RetryConfig.JitterFactor"},
		},
		{
			name: "NewRetryBudget",
			build: func() (any, error) {
				return NewRetryBudget(RetryBudgetConfig{Ratio: 11, MinRetriesPerSecond: 5, NoMinRetries: true, Window: time.Millisecond})
			},
			fields: []string{"core.RetryBudgetConfig.Ratio", "core.RetryBudgetConfig.MinRetriesPerSecond", "core.RetryBudgetConfig.Window"},
		},
		{
			name: "NewSLOTracker/all",
			build: func() (any, error) {
				return NewSLOTracker(SLOConfig{TargetSuccessRate: 1, ErrorBudgetPercent: 100, Window: time.Millisecond,
					BurnRateThreshold: 0.5, LongWindow: -1, ShortWindow: -1, MinEvents: -1})
			},
			fields: []string{
				"core.SLOConfig.TargetSuccessRate", "core.SLOConfig.ErrorBudgetPercent", "core.SLOConfig.Window",
				"core.SLOConfig.BurnRateThreshold", "core.SLOConfig.LongWindow", "core.SLOConfig.ShortWindow", "core.SLOConfig.MinEvents",
			},
		},
		{
			name: "NewSLOTracker/cross-field",
			build: func() (any, error) {
				return NewSLOTracker(SLOConfig{TargetSuccessRate: 0.999, ErrorBudgetPercent: 1, Window: time.Minute,
					LongWindow: 2 * time.Minute, ShortWindow: 5 * time.Millisecond, MinEvents: -5})
			},
			fields: []string{
				"core.SLOConfig.ErrorBudgetPercent", "core.SLOConfig.LongWindow", "core.SLOConfig.ShortWindow", "core.SLOConfig.MinEvents",
			},
		},
		{
			name: "NewSLOTracker/too-many-buckets",
			build: func() (any, error) {
				return NewSLOTracker(SLOConfig{Window: 7 * 24 * time.Hour, LongWindow: time.Hour, BurnRateThreshold: 20_000})
			},
			fields: []string{"core.SLOConfig.ShortWindow", "core.SLOConfig.BurnRateThreshold"},
		},
		{
			name: "NewManager",
			build: func() (any, error) {
				return NewManager(ManagerConfig{
					MaxEndpoints: -1,
					Defaults: EndpointConfig{
						Breaker:  &BreakerConfig{Timeout: -1, SuccessThreshold: 4},
						Bulkhead: &BulkheadConfig{MaxQueueSize: -5},
						SLO:      &SLOConfig{MinEvents: -1},
						Retry:    &RetryConfig{MaxAttempts: -1},
					},
					Endpoints: map[string]EndpointConfig{
						"GET /x": {
							Breaker:  &BreakerConfig{Timeout: 25 * time.Hour, FailureThreshold: -2},
							Bulkhead: &BulkheadConfig{QueueTimeout: -1},
							SLO:      &SLOConfig{Window: time.Millisecond},
							Retry:    &RetryConfig{BackoffMultiplier: 0.5},
						},
						"GET /ok": {Breaker: &BreakerConfig{}, Bulkhead: &BulkheadConfig{}, SLO: &SLOConfig{}, Retry: &RetryConfig{}},
						"":        {},
						"bad\x00": {},
					},
					PerUser: &PerUserConfig{Bulkhead: BulkheadConfig{QueueTimeout: -1}, TopN: -1},
				})
			},
			fields: []string{
				"core.ManagerConfig.MaxEndpoints",
				"core.ManagerConfig.Defaults.Breaker.Timeout",
				"core.ManagerConfig.Defaults.Breaker.SuccessThreshold",
				"core.ManagerConfig.Defaults.Bulkhead.MaxQueueSize",
				"core.ManagerConfig.Defaults.SLO.MinEvents",
				"core.ManagerConfig.Defaults.Retry.MaxAttempts",
				"core.ManagerConfig.Endpoints[GET /x].Breaker.Timeout",
				"core.ManagerConfig.Endpoints[GET /x].Breaker.FailureThreshold",
				"core.ManagerConfig.Endpoints[GET /x].Bulkhead.QueueTimeout",
				"core.ManagerConfig.Endpoints[GET /x].SLO.Window",
				"core.ManagerConfig.Endpoints[GET /x].Retry.BackoffMultiplier",
				"core.ManagerConfig.Endpoints", // ""
				"core.ManagerConfig.Endpoints", // "bad\x00"
				"core.ManagerConfig.PerUser.Bulkhead.QueueTimeout",
				"core.ManagerConfig.PerUser.TopN",
			},
		},
		{
			name: "Manager.Reconfigure",
			build: func() (any, error) {
				m, err := NewManager(ManagerConfig{})
				if err != nil {
					return nil, err
				}
				return nil, m.Reconfigure("GET /x", EndpointConfig{
					Breaker:  &BreakerConfig{Timeout: -1, SuccessThreshold: 4},
					Bulkhead: &BulkheadConfig{MaxQueueSize: -5},
					SLO:      &SLOConfig{TargetSuccessRate: 2},
					Retry:    &RetryConfig{MaxAttempts: 5000},
				})
			},
			fields: []string{
				"core.EndpointConfig.Breaker.Timeout", "core.EndpointConfig.Breaker.SuccessThreshold",
				"core.EndpointConfig.Bulkhead.MaxQueueSize", "core.EndpointConfig.SLO.TargetSuccessRate",
				"core.EndpointConfig.Retry.MaxAttempts",
			},
		},
		{
			// A bad PerUser alone is enough to fail.
			name: "NewManager/PerUser",
			build: func() (any, error) {
				return NewManager(ManagerConfig{PerUser: &PerUserConfig{Bulkhead: BulkheadConfig{QueueTimeout: -1}, Shards: 3}})
			},
			fields: []string{"core.ManagerConfig.PerUser.Bulkhead.QueueTimeout", "core.ManagerConfig.PerUser.Shards"},
		},
		{
			name: "NewManager/Faults",
			build: func() (any, error) {
				return NewManager(ManagerConfig{Faults: &FaultLimits{
					DefaultDuration: 2 * time.Hour, MaxFaults: -1,
					Experiments: []Fault{
						{Endpoint: "GET /x", Percent: 50, Status: 500},
						{ID: "bad id", Endpoint: "", Percent: 0, Status: 200, Duration: 2 * time.Hour},
					},
				}})
			},
			fields: []string{
				"core.ManagerConfig.Faults.DefaultDuration", "core.ManagerConfig.Faults.MaxFaults",
				"core.ManagerConfig.Faults.Experiments[1].ID", "core.ManagerConfig.Faults.Experiments[1].Endpoint",
				"core.ManagerConfig.Faults.Experiments[1].Percent", "core.ManagerConfig.Faults.Experiments[1].Status",
				"core.ManagerConfig.Faults.Experiments[1].Duration",
			},
		},
		{
			name: "Manager.StartFault",
			build: func() (any, error) {
				m, err := NewManager(ManagerConfig{Clock: NewFakeClock(t0), Faults: &FaultLimits{MaxDuration: time.Minute}})
				if err != nil {
					return nil, err
				}
				return m.StartFault(Fault{
					ID: strings.Repeat("x", 65), Endpoint: "GET /\x00", Percent: math.NaN(),
					Latency: -1, LatencyMax: 2 * time.Hour, Status: 500, Abort: true,
					Header: "X Bad", HeaderValue: "a\nb", User: "\xff", Duration: time.Hour,
					Ends: t0.Add(-time.Second), Reason: strings.Repeat("r", 257), Origin: "\t",
				})
			},
			fields: []string{
				"core.Fault.ID", "core.Fault.Endpoint", "core.Fault.Percent", "core.Fault.Latency", "core.Fault.LatencyMax",
				"core.Fault.Abort", "core.Fault.Header", "core.Fault.HeaderValue", "core.Fault.User", "core.Fault.Duration",
				"core.Fault.Ends", "core.Fault.Reason", "core.Fault.Origin",
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := c.build()
			if err == nil {
				t.Fatalf("accepted a bad config, made %T", v)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error %v: want a *ConfigError matching ErrInvalidConfig", err)
			}
			var got []string
			for _, ce := range configErrors(err) {
				got = append(got, ce.Field)
				if ce.Rule == "" || !strings.Contains(ce.Error(), ce.Field) {
					t.Errorf("%s: no rule, or not named in %q", ce.Field, ce.Error())
				}
			}
			want := slices.Clone(c.fields)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("fields reported:\n  %s\nwant:\n  %s\nerror: %v", strings.Join(got, "\n  "), strings.Join(want, "\n  "), err)
			}
			for _, f := range c.fields {
				if !strings.Contains(err.Error(), f) {
					t.Errorf("error text does not name %s", f)
				}
			}
		})
	}
}

// The zero value of every config is valid.
func TestZeroConfigsAreValid(t *testing.T) {
	for name, build := range map[string]func() error{
		"BreakerConfig":     func() error { _, err := NewBreaker(BreakerConfig{}); return err },
		"BulkheadConfig":    func() error { _, err := NewBulkhead(BulkheadConfig{}); return err },
		"PerUserConfig":     func() error { _, err := NewPerUserBulkhead(PerUserConfig{}); return err },
		"RetryConfig":       func() error { _, err := NewRetry(RetryConfig{}); return err },
		"RetryBudgetConfig": func() error { _, err := NewRetryBudget(RetryBudgetConfig{}); return err },
		"SLOConfig":         func() error { _, err := NewSLOTracker(SLOConfig{}); return err },
		"ManagerConfig":     func() error { _, err := NewManager(ManagerConfig{}); return err },
	} {
		if err := build(); err != nil {
			t.Errorf("zero %s: %v", name, err)
		}
	}
}
