package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bulwark-go/bulwark/admin"
	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
)

// fakeSettings keeps endpoints' settings as a configuration file's section
// for an endpoint gives them, reduced to a breaker's failure_threshold and
// timeout, and publishes a ConfigChange for every change, as the kit does.
type fakeSettings struct {
	bus   *events.Bus
	clock core.Clock

	mu      sync.Mutex
	runtime map[string]breakerSection
	fail    error    // returned by Reconfigure and ResetConfig when set
	patches []string // every patch Reconfigure was given
}

type breakerSection struct {
	FailureThreshold int    `json:"failure_threshold"`
	Timeout          string `json:"timeout"`
}

var fileSection = breakerSection{FailureThreshold: 5, Timeout: "1m0s"}

func newFakeSettings(m *core.Manager) *fakeSettings {
	return &fakeSettings{bus: m.Bus(), clock: m.Clock(), runtime: map[string]breakerSection{}}
}

func (s *fakeSettings) EndpointSettings(endpoint string) (json.RawMessage, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, src := fileSection, "file"
	if r, ok := s.runtime[endpoint]; ok {
		sec, src = r, "runtime"
	}
	b, _ := json.Marshal(map[string]breakerSection{"breaker": sec})
	return b, src
}

func (s *fakeSettings) Reconfigure(_ context.Context, endpoint string, patch []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.patches = append(s.patches, string(patch))
	if s.fail != nil {
		return s.fail
	}
	var p struct {
		Breaker *struct {
			FailureThreshold *int    `json:"failure_threshold"`
			Timeout          *string `json:"timeout"`
		} `json:"breaker"`
	}
	dec := json.NewDecoder(bytes.NewReader(patch))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf("%w: endpoints[%s]: %v", core.ErrInvalidConfig, endpoint, err)
	}
	sec, ok := s.runtime[endpoint]
	if !ok {
		sec = fileSection
	}
	var errs []error
	path := "endpoints[" + endpoint + "].breaker."
	if b := p.Breaker; b != nil {
		if n := b.FailureThreshold; n != nil {
			if *n < 1 || *n > 1_000_000 {
				errs = append(errs, &core.ConfigError{Field: path + "failure_threshold", Value: *n, Rule: "must be between 1 and 1000000"})
			}
			sec.FailureThreshold = *n
		}
		if v := b.Timeout; v != nil {
			if d, err := time.ParseDuration(*v); err != nil || d < time.Millisecond || d > 24*time.Hour {
				errs = append(errs, &core.ConfigError{Field: path + "timeout", Value: *v, Rule: "must be a duration between 1ms and 24h"})
			} else {
				sec.Timeout = d.String()
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("bulwark: settings of %q: %w", endpoint, errors.Join(errs...))
	}
	s.runtime[endpoint] = sec
	s.bus.Publish(events.ConfigChange{Type: events.TypeConfigChange, Endpoint: endpoint, Source: "runtime", Timestamp: s.clock.Now().UTC()})
	return nil
}

func (s *fakeSettings) ResetConfig(_ context.Context, endpoint string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	delete(s.runtime, endpoint)
	s.bus.Publish(events.ConfigChange{Type: events.TypeConfigChange, Endpoint: endpoint, Source: "file", Timestamp: s.clock.Now().UTC()})
	return nil
}

func (s *fakeSettings) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.patches)
}

type settingsBody struct {
	Endpoint       string          `json:"endpoint"`
	Settings       json.RawMessage `json:"settings"`
	SettingsSource string          `json:"settings_source"`
}

type problemsBody struct {
	Error    string `json:"error"`
	Problems []struct {
		Field   string `json:"field"`
		Rule    string `json:"rule"`
		Message string `json:"message"`
	} `json:"problems"`
}

func TestSettingsChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManager(t, core.NewFakeClock(seedTime))
		s := newFakeSettings(m)
		h, _ := newHandler(t, admin.Config{Manager: m, Token: testToken, Settings: s})
		breaker(t, m, usersEP)
		rx, err := h.Register(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		cfgURL := "/config/" + url.PathEscape(usersEP)
		statusURL := "/status/" + url.PathEscape(usersEP)

		// The status shows the settings in effect and their source.
		var es settingsBody
		serve(t, h, "GET", statusURL, testToken, "").json(t, &es)
		if string(es.Settings) != `{"breaker":{"failure_threshold":5,"timeout":"1m0s"}}` || es.SettingsSource != "file" {
			t.Fatalf("status: %s %q", es.Settings, es.SettingsSource)
		}

		// A patch goes to Reconfigure as it was sent, and the answer shows the result.
		patch := `{"breaker":{"failure_threshold":10}}`
		r := serve(t, h, "PUT", cfgURL, testToken, " "+patch+"\n", "Content-Type", "application/json")
		if r.code != 200 {
			t.Fatalf("PUT: %d %s", r.code, r.body)
		}
		var res settingsBody
		r.json(t, &res)
		if res.Endpoint != usersEP || string(res.Settings) != `{"breaker":{"failure_threshold":10,"timeout":"1m0s"}}` || res.SettingsSource != "runtime" {
			t.Fatalf("PUT answer: %s", r.body)
		}
		if !slices.Equal(s.patches, []string{patch}) {
			t.Fatalf("Reconfigure got %q", s.patches)
		}
		serve(t, h, "GET", statusURL, testToken, "").json(t, &es)
		if string(es.Settings) != string(res.Settings) || es.SettingsSource != "runtime" {
			t.Fatalf("status after PUT: %s %q", es.Settings, es.SettingsSource)
		}
		// The change reaches the feed with a seq.
		if msg := string(<-rx.C()); msg != `{"type":"config_change","endpoint":"GET /users/{id}","source":"runtime","timestamp":"2025-10-08T12:00:00Z","seq":1}` {
			t.Fatalf("feed: %s", msg)
		}

		// DELETE returns to the file's settings.
		r = serve(t, h, "DELETE", cfgURL, testToken, "")
		r.json(t, &res)
		if r.code != 200 || res.SettingsSource != "file" || !strings.Contains(string(res.Settings), `"failure_threshold":5`) {
			t.Fatalf("DELETE: %d %s", r.code, r.body)
		}
		if msg := string(<-rx.C()); !strings.Contains(msg, `"source":"file"`) || !strings.Contains(msg, `"seq":2`) {
			t.Fatalf("feed: %s", msg)
		}
		// Both are in the history.
		var ev struct{ Events []json.RawMessage }
		serve(t, h, "GET", "/events", testToken, "").json(t, &ev)
		if len(ev.Events) != 2 || !strings.Contains(string(ev.Events[0]), `"type":"config_change"`) {
			t.Fatalf("events: %s", ev.Events)
		}
	})
}

func TestSettingsRefused(t *testing.T) {
	m := newManager(t, core.NewFakeClock(seedTime))
	s := newFakeSettings(m)
	h, _ := newHandler(t, admin.Config{Manager: m, Token: testToken, Settings: s})
	cfgURL := "/config/" + url.PathEscape(usersEP)

	// Every bad field is named, each apart.
	r := serve(t, h, "PUT", cfgURL, testToken, `{"breaker":{"failure_threshold":0,"timeout":"forever"}}`)
	if r.code != 400 {
		t.Fatalf("bad values: %d %s", r.code, r.body)
	}
	var pb problemsBody
	r.json(t, &pb)
	for _, f := range []string{"failure_threshold", "timeout"} {
		if !strings.Contains(pb.Error, "endpoints[GET /users/{id}].breaker."+f) {
			t.Errorf("the error does not name %s: %s", f, pb.Error)
		}
	}
	if len(pb.Problems) != 2 || pb.Problems[0].Field != "endpoints[GET /users/{id}].breaker.failure_threshold" ||
		pb.Problems[1].Field != "endpoints[GET /users/{id}].breaker.timeout" || pb.Problems[1].Rule == "" || pb.Problems[1].Message == "" {
		t.Fatalf("problems: %s", r.body)
	}
	// A problem that names no field is reported as it is.
	r = serve(t, h, "PUT", cfgURL, testToken, `{"breaker":{"failur_threshold":3}}`)
	pb = problemsBody{}
	r.json(t, &pb)
	if r.code != 400 || len(pb.Problems) != 1 || pb.Problems[0].Field != "" || !strings.Contains(pb.Problems[0].Message, "failur_threshold") {
		t.Fatalf("unknown key: %d %s", r.code, r.body)
	}
	if src := settingsSource(s, usersEP); src != "file" {
		t.Fatalf("a refused patch changed the settings: %s", src)
	}

	// Bodies that are not one JSON object never reach Reconfigure.
	before := s.calls()
	cases := []struct {
		body, want string
		code       int
	}{
		{``, "body is empty", 400},
		{`   `, "body is empty", 400},
		{`null`, "not null", 400},
		{`[1,2]`, "must be a JSON object", 400},
		{`"breaker"`, "must be a JSON object", 400},
		{`7`, "must be a JSON object", 400},
		{`{"breaker":{}}{}`, "exactly one JSON object", 400},
		{`{"breaker":`, "ends too early", 400},
		{`{breaker:1}`, "not valid JSON", 400},
		{`{"breaker":{"timeout":"` + strings.Repeat("x", 64<<10) + `"}}`, "larger than 65536 bytes", 413},
	}
	for _, c := range cases {
		r := serve(t, h, "PUT", cfgURL, testToken, c.body)
		if r.code != c.code || !strings.Contains(r.errorText(t), c.want) {
			t.Errorf("body %.40q: %d %s, want %d %q", c.body, r.code, r.body, c.code, c.want)
		}
	}
	if r := serve(t, h, "PUT", cfgURL, testToken, `{}`, "Content-Type", "text/plain"); r.code != 415 {
		t.Errorf("text/plain: %d", r.code)
	}
	if r := serve(t, h, "PUT", "/config/bad%00name", testToken, `{}`); r.code != 400 {
		t.Errorf("bad endpoint name: %d", r.code)
	}
	if n := s.calls(); n != before {
		t.Fatalf("Reconfigure was called %d times for bad bodies", n-before)
	}

	// Any other failure is a 503.
	s.mu.Lock()
	s.fail = errors.New("redis: connection refused")
	s.mu.Unlock()
	for _, method := range []string{"PUT", "DELETE"} {
		r := serve(t, h, method, cfgURL, testToken, `{"breaker":{"failure_threshold":3}}`)
		if r.code != 503 || !strings.Contains(r.errorText(t), "connection refused") {
			t.Fatalf("%s failing: %d %s", method, r.code, r.body)
		}
	}
}

func settingsSource(s *fakeSettings, endpoint string) string {
	_, src := s.EndpointSettings(endpoint)
	return src
}

func TestSettingsAuth(t *testing.T) {
	m := newManager(t, core.NewFakeClock(seedTime))
	breaker(t, m, "api")
	t.Run("without Settings", func(t *testing.T) {
		h, _ := newHandler(t, admin.Config{Manager: m, Token: testToken})
		r := serve(t, h, "PUT", "/config/api", testToken, `{}`)
		if r.code != 404 || !strings.Contains(r.errorText(t), "admin.Config.Settings") {
			t.Fatalf("%d %s", r.code, r.body)
		}
		if r := serve(t, h, "GET", "/status/api", testToken, ""); strings.Contains(string(r.body), "settings") {
			t.Fatalf("settings in the status without Config.Settings: %s", r.body)
		}
	})
	t.Run("without a token", func(t *testing.T) {
		s := newFakeSettings(m)
		h, _ := newHandler(t, admin.Config{Manager: m, Settings: s})
		for _, method := range []string{"PUT", "DELETE"} {
			r := serve(t, h, method, "/config/api", "some-token-or-other", `{}`)
			if r.code != 403 || !strings.Contains(r.errorText(t), "admin.Config.Token") {
				t.Fatalf("%s: %d %s", method, r.code, r.body)
			}
		}
		if s.calls() != 0 || settingsSource(s, "api") != "file" {
			t.Fatal("changed without a token")
		}
		// The settings are still shown.
		var es settingsBody
		serve(t, h, "GET", "/status/api", "", "").json(t, &es)
		if es.SettingsSource != "file" || len(es.Settings) == 0 {
			t.Fatalf("status: %+v", es)
		}
	})
	t.Run("with a wrong token", func(t *testing.T) {
		s := newFakeSettings(m)
		h, _ := newHandler(t, admin.Config{Manager: m, Token: testToken, PublicRead: true, Settings: s})
		for _, tok := range []string{"", "wrong-token-wrong-token"} {
			for _, method := range []string{"PUT", "DELETE"} {
				if r := serve(t, h, method, "/config/api", tok, `{"breaker":{"failure_threshold":3}}`); r.code != 401 {
					t.Fatalf("%s with %q: %d", method, tok, r.code)
				}
			}
		}
		if s.calls() != 0 {
			t.Fatal("changed with a wrong token")
		}
	})
}

// A Settings whose JSON is broken cannot break the status.
func TestSettingsNotJSON(t *testing.T) {
	m := newManager(t, core.NewFakeClock(seedTime))
	breaker(t, m, "api")
	h, _ := newHandler(t, admin.Config{Manager: m, Settings: brokenSettings{}})
	r := serve(t, h, "GET", "/status/api", "", "")
	if r.code != 200 || !strings.Contains(string(r.body), `"settings":null`) {
		t.Fatalf("%d %s", r.code, r.body)
	}
}

type brokenSettings struct{}

func (brokenSettings) EndpointSettings(string) (json.RawMessage, string) {
	return json.RawMessage(`{"breaker":`), "file"
}
func (brokenSettings) Reconfigure(context.Context, string, []byte) error { return nil }
func (brokenSettings) ResetConfig(context.Context, string) error         { return nil }
