package bulwark

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/core"
)

func TestLoadConfigReadsEverySection(t *testing.T) {
	t.Setenv("BULWARK_TEST_TOKEN", "0123456789abcdef0123")
	cfg, err := LoadConfig(filepath.Join("example-app", "bulwark.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Defaults.Breaker.Timeout; got != 15*time.Second {
		t.Errorf("defaults.breaker.timeout = %v", got)
	}
	up := cfg.Endpoints["upstream:quotes"]
	if up.Retry == nil || up.Retry.MaxAttempts != 3 || up.Health == nil || up.Health.Interval != 2*time.Second || up.SLO == nil || !up.SLO.Disabled {
		t.Errorf("endpoints.upstream:quotes = %+v", up)
	}
	if cfg.PerUser == nil || cfg.PerUser.MaxUsers != 1000 || cfg.UserHeader != "X-User" {
		t.Errorf("per_user = %+v, user_header %q", cfg.PerUser, cfg.UserHeader)
	}
	if cfg.Store.File == nil || cfg.Store.File.Interval != 5*time.Second || !cfg.Alerts.Log || cfg.Admin.Prefix != "/admin" {
		t.Errorf("store/alerts/admin: %+v %+v %+v", cfg.Store, cfg.Alerts, cfg.Admin)
	}
	if cfg.Faults != nil {
		t.Errorf("the example injects faults: %+v", cfg.Faults)
	}
}

// The example's shared rate limit, commented out, loads once uncommented.
func TestExampleSharedRateLimitLoads(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("example-app", "bulwark.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const section = "  # \"GET /api/users/{id}\":\n  #   rate_limit: {rate: 1000, burst: 100, shared: true}\n"
	src := string(b)
	if !strings.Contains(src, section) {
		t.Fatal("the example has no commented-out shared rate limit")
	}
	src = strings.Replace(src, section, strings.ReplaceAll(section, "# ", ""), 1)
	cfg, err := ParseConfig("example.yaml", []byte(src))
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	if rl := cfg.Endpoints["GET /api/users/{id}"].RateLimit; rl == nil || !rl.Shared || rl.Rate != 1000 || rl.Burst != 100 {
		t.Fatalf("rate_limit: %+v", rl)
	}
}

// The example's faults section, commented out, loads once uncommented.
func TestExampleFaultsSectionLoads(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("example-app", "bulwark.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n# faults:\n")
	if !ok {
		t.Fatal("the example has no commented-out faults section")
	}
	section, _, _ = strings.Cut(section, "\n\n")
	src := "faults:\n"
	for _, l := range strings.Split(section, "\n") {
		l = strings.TrimPrefix(strings.TrimPrefix(l, "#"), " ")
		if i := strings.Index(l, " #"); i >= 0 {
			l = l[:i]
		}
		src += l + "\n"
	}
	cfg, err := ParseConfig("example.yaml", []byte(src))
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	if cfg.Faults == nil || len(cfg.Faults.Experiments) != 1 || cfg.Faults.Experiments[0].HeaderValue != "on" {
		t.Fatalf("faults %+v", cfg.Faults)
	}
}

func TestLoadConfigFaults(t *testing.T) {
	src := `
faults:
  default_duration: 5m
  max_duration: 30m
  experiments:
    - {id: checkout, endpoint: "POST /checkout", percent: 50, status: 503, duration: 20s, reason: game day}
    - endpoint: upstream:quotes
      percent: 10
      latency: 200ms
      latency_max: 1s
      header: X-Chaos
      header_value: "on"
`
	cfg, err := ParseConfig("b.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	f := cfg.Faults
	if f == nil || f.DefaultDuration != 5*time.Minute || f.MaxDuration != 30*time.Minute || len(f.Experiments) != 2 {
		t.Fatalf("faults %+v", f)
	}
	if e := f.Experiments[0]; e != (core.Fault{ID: "checkout", Endpoint: "POST /checkout", Percent: 50, Status: 503, Duration: 20 * time.Second, Reason: "game day"}) {
		t.Errorf("experiments[0] = %+v", e)
	}
	if e := f.Experiments[1]; e.Latency != 200*time.Millisecond || e.LatencyMax != time.Second || e.Header != "X-Chaos" || e.HeaderValue != "on" || e.ID != "" {
		t.Errorf("experiments[1] = %+v", e)
	}
	// Checking the file starts nothing: New does.
	k, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	fs := k.Manager().Faults()
	if len(fs) != 2 || fs[0].ID != "checkout" || !fs[0].Ends.After(time.Now()) {
		t.Fatalf("running after New: %+v", fs)
	}
	if err := k.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if fs := k.Manager().Faults(); len(fs) != 0 {
		t.Fatalf("running after Close: %+v", fs)
	}
}

// Every problem of a file is reported, each naming the file, the key's
// path and the rule.
func TestLoadConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, file, src string
		want            []string // substrings of one error each
	}{
		{"wrong type", "b.yaml", "defaults:\n  breaker:\n    failure_threshold: many\n",
			[]string{"b.yaml: defaults.breaker.failure_threshold", "whole number"}},
		{"out of range", "bulwark.yaml", `endpoints: {"GET /users/{id}": {breaker: {failure_threshold: -3}}}`,
			[]string{`bulwark.yaml: endpoints."GET /users/{id}".breaker.failure_threshold = -3 is invalid`, "must be between 1 and 1000000"}},
		{"unknown key", "b.yaml", "defaults:\n  breaker:\n    failure_treshold: 3\n",
			[]string{"b.yaml: defaults.breaker.failure_treshold", "unknown key", "failure_threshold"}},
		{"bad duration", "b.json", `{"defaults": {"breaker": {"timeout": "15 seconds"}}}`,
			[]string{"b.json: defaults.breaker.timeout", "not a duration"}},
		{"duration as a number", "b.yaml", "defaults: {bulkhead: {queue_timeout: 5}}",
			[]string{"b.yaml: defaults.bulkhead.queue_timeout", "duration"}},
		{"missing environment variable", "b.yaml", "admin: {token: \"${BULWARK_TEST_UNSET}\"}",
			[]string{"b.yaml: admin.token", "BULWARK_TEST_UNSET is not set"}},
		{"not YAML", "b.yaml", "defaults: [unclosed", []string{"b.yaml", "not valid YAML"}},
		{"a list at the top", "b.yaml", "- a\n- b", []string{"b.yaml", "mapping of sections"}},
		{"two problems", "b.yaml", "defaults: {breaker: {timeout: 1ns, half_open_max_requests: 0.5}}",
			[]string{"b.yaml: defaults.breaker.timeout", "b.yaml: defaults.breaker.half_open_max_requests"}},
		{"fault limits", "b.yaml", "faults: {max_duration: 48h, max_faults: -1}",
			[]string{"b.yaml: faults.max_duration = 48h0m0s is invalid: must be between 1ms and 24h0m0s", "b.yaml: faults.max_faults = -1 is invalid"}},
		{"a fault experiment", "b.json", `{"faults": {"experiments": [{"endpoint": "GET /x", "percent": 50, "status": 500}, {"endpoint": "GET /y", "percent": 0, "status": 200, "abort": true}]}}`,
			[]string{"b.json: faults.experiments[1].percent = 0 is invalid: must be more than 0", "b.json: faults.experiments[1].status = 200 is invalid"}},
		{"an experiment's unknown key", "b.yaml", "faults:\n  experiments:\n    - {endpoint: GET /x, percnt: 5, abort: true}\n",
			[]string{"b.yaml: faults.experiments[0].percnt", "unknown key", "b.yaml: faults.experiments[0].percent = 0 is invalid"}},
		{"an experiment's end", "b.yaml", "faults: {experiments: [{endpoint: GET /x, percent: 5, abort: true, ends: '2030-01-01T00:00:00Z'}]}",
			[]string{"b.yaml: faults.experiments[0].ends", "unknown key"}},
		{"a per-user limit shared", "b.yaml", "user_header: X-User\nper_user_rate_limit: {rate_limit: {rate: 5, shared: true}}\n",
			[]string{"b.yaml: per_user_rate_limit.rate_limit.shared = true is invalid: must be false"}},
		{"an experiment's duration", "b.yaml", "faults: {max_duration: 1m, experiments: [{endpoint: GET /x, percent: 5, abort: true, duration: 2m}]}",
			[]string{"b.yaml: faults.experiments[0].duration = 2m0s is invalid: must be between 1ms and 1m0s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig(tc.file, []byte(tc.src))
			if err == nil {
				t.Fatal("no error")
			}
			var ce *core.ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, core.ErrInvalidConfig) {
				t.Fatalf("%v is not a *core.ConfigError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	_, err := LoadConfig(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
}

func FuzzLoadConfig(f *testing.F) {
	seed, _ := os.ReadFile(filepath.Join("example-app", "bulwark.example.yaml"))
	f.Add("b.yaml", string(seed))
	f.Add("b.json", `{"endpoints": {"x": {"breaker": {"timeout": "1s"}}}}`)
	f.Add("b.yaml", "defaults: &a {breaker: *a}")
	f.Fuzz(func(t *testing.T, name, src string) {
		cfg, err := ParseConfig(name, []byte(src))
		if err != nil {
			var ce *core.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a *core.ConfigError", err)
			}
			return
		}
		_ = cfg.managerConfig()
	})
}
