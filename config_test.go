package bulwark

import (
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
