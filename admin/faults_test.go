package admin_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/admin"
	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
)

type faultBody = admin.FaultJSON

// faultKeys are the keys of an experiment's JSON, as the dashboard reads
// them.
var faultKeys = []string{"abort", "endpoint", "ends", "header", "header_value", "id", "injected", "latency", "latency_max",
	"origin", "percent", "reason", "remaining_seconds", "status", "user"}

type faultsBody struct {
	Enabled         bool        `json:"enabled"`
	DefaultDuration string      `json:"default_duration"`
	MaxDuration     string      `json:"max_duration"`
	Faults          []faultBody `json:"faults"`
}

// faultFixture serves a handler whose Manager (on a fake clock) has fault
// injection on; experiments left running end with the test.
func faultFixture(t *testing.T, cfg admin.Config) *fixture {
	t.Helper()
	clock := core.NewFakeClock(seedTime)
	m := newManager(t, clock, core.ManagerConfig{Faults: &core.FaultLimits{MaxDuration: 30 * time.Minute, MaxFaults: 2}})
	t.Cleanup(func() {
		for _, f := range m.Faults() {
			m.StopFault(f.ID)
		}
	})
	cfg.Manager = m
	f := newFixture(t, cfg)
	f.clock = clock
	return f
}

func TestFaultsStartListStop(t *testing.T) {
	f := faultFixture(t, admin.Config{Token: testToken})
	sub := f.m.Bus().Subscribe(16)
	defer sub.Close()
	r := do(t, "POST", f.srv.URL+"/faults", testToken,
		`{"endpoint":"GET /x","percent":50,"status":500,"duration":"20s","latency":"100ms","latency_max":"300ms","header":"X-Chaos","header_value":"on","user":"ann","reason":"game day"}`,
		"Content-Type", "application/json")
	if r.code != http.StatusCreated {
		t.Fatalf("POST: %d %s", r.code, r.body)
	}
	if got := keys(t, r.body); !slices.Equal(got, faultKeys) {
		t.Fatalf("keys %v, want %v", got, faultKeys)
	}
	var started faultBody
	r.json(t, &started)
	if len(started.ID) != 16 || started.Endpoint != "GET /x" || started.Percent != 50 || started.Status != 500 ||
		started.Latency != "100ms" || started.LatencyMax != "300ms" || started.HeaderValue != "on" || started.User != "ann" ||
		started.RemainingSeconds != 20 || !started.Ends.Equal(seedTime.Add(20*time.Second)) || started.Reason != "game day" {
		t.Fatalf("started %+v", started)
	}
	if e := (<-sub.C()).(events.FaultChange); e.Type != events.TypeFaultStart || e.ID != started.ID {
		t.Fatalf("event %+v", e)
	}

	f.clock.Advance(5 * time.Second)
	var list faultsBody
	r = do(t, "GET", f.srv.URL+"/faults", testToken, "")
	if got := keys(t, r.body); !slices.Equal(got, []string{"default_duration", "enabled", "faults", "max_duration"}) {
		t.Fatalf("keys %v", got)
	}
	r.json(t, &list)
	if !list.Enabled || list.DefaultDuration != "10m0s" || list.MaxDuration != "30m0s" || len(list.Faults) != 1 ||
		list.Faults[0].ID != started.ID || list.Faults[0].RemainingSeconds != 15 || list.Faults[0].User != "ann" {
		t.Fatalf("list %+v", list)
	}
	// The endpoint's status shows it, and the breaker's injected failures.
	if _, err := f.m.Endpoint("GET /x"); err != nil {
		t.Fatal(err)
	}
	var es struct {
		Faults  []faultBody `json:"faults"`
		Breaker struct {
			InjectedFailures *int64 `json:"injected_failures"`
		} `json:"breaker"`
	}
	do(t, "GET", f.srv.URL+"/status/"+url.PathEscape("GET /x"), testToken, "").json(t, &es)
	if len(es.Faults) != 1 || es.Faults[0].ID != started.ID || es.Breaker.InjectedFailures == nil {
		t.Fatalf("endpoint status %+v", es)
	}
	var other struct {
		Faults []faultBody `json:"faults"`
	}
	breaker(t, f.m, "GET /y")
	do(t, "GET", f.srv.URL+"/status/"+url.PathEscape("GET /y"), testToken, "").json(t, &other)
	if other.Faults == nil || len(other.Faults) != 0 {
		t.Fatalf("another endpoint's faults: %+v", other.Faults)
	}

	r = do(t, "DELETE", f.srv.URL+"/faults/"+started.ID, testToken, "")
	var stopped faultBody
	r.json(t, &stopped)
	if r.code != 200 || stopped.ID != started.ID {
		t.Fatalf("DELETE: %d %s", r.code, r.body)
	}
	if e := (<-sub.C()).(events.FaultChange); e.Type != events.TypeFaultEnd || e.Reason != "stopped" {
		t.Fatalf("event %+v", e)
	}
	if r := do(t, "DELETE", f.srv.URL+"/faults/"+started.ID, testToken, ""); r.code != 404 {
		t.Fatalf("DELETE again: %d %s", r.code, r.body)
	}
	do(t, "GET", f.srv.URL+"/faults", testToken, "").json(t, &list)
	if len(list.Faults) != 0 {
		t.Fatalf("after the stop: %+v", list.Faults)
	}
}

// The filters' values are shown only to a request with the token.
func TestFaultsHideFilters(t *testing.T) {
	f := faultFixture(t, admin.Config{Token: testToken, PublicRead: true})
	if _, err := f.m.StartFault(core.Fault{Endpoint: "GET /x", Percent: 10, Abort: true, Header: "X-Chaos", HeaderValue: "s3cret", User: "ann"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.StartFault(core.Fault{Endpoint: "GET /x", Percent: 10, Abort: true, Header: "X-Any"}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/faults", "/status", "/status/" + url.PathEscape("GET /x")} {
		r := do(t, "GET", f.srv.URL+path, "", "")
		if r.code != 200 || strings.Contains(string(r.body), "s3cret") || strings.Contains(string(r.body), `"ann"`) ||
			!strings.Contains(string(r.body), `"header_value":"(set)"`) || !strings.Contains(string(r.body), `"user":"(set)"`) ||
			!strings.Contains(string(r.body), `"header_value":"",`) {
			t.Errorf("%s without the token: %d %s", path, r.code, r.body)
		}
		if r := do(t, "GET", f.srv.URL+path, testToken, ""); !strings.Contains(string(r.body), `"header_value":"s3cret"`) {
			t.Errorf("%s with the token: %s", path, r.body)
		}
	}
}

func TestFaultsAuth(t *testing.T) {
	body := `{"endpoint":"GET /x","percent":50,"status":500}`
	// No token configured: reads are open, changes refused.
	open := faultFixture(t, admin.Config{})
	if r := do(t, "GET", open.srv.URL+"/faults", "", ""); r.code != 200 {
		t.Fatalf("GET without a token configured: %d", r.code)
	}
	for _, m := range []string{"POST /faults", "DELETE /faults/x"} {
		method, path, _ := strings.Cut(m, " ")
		if r := do(t, method, open.srv.URL+path, "", body); r.code != 403 || !strings.Contains(r.errorText(t), "admin.Config.Token") {
			t.Fatalf("%s without a token configured: %d %s", m, r.code, r.body)
		}
	}
	f := faultFixture(t, admin.Config{Token: testToken})
	for _, tc := range []struct {
		method, path, token string
		want                int
	}{
		{"GET", "/faults", "", 401},
		{"GET", "/faults", "wrong-token-0123456789", 401},
		{"POST", "/faults", "", 401},
		{"POST", "/faults", "wrong-token-0123456789", 401},
		{"DELETE", "/faults/x", "", 401},
		{"PUT", "/faults", testToken, 405},
		{"POST", "/faults/x", testToken, 405},
		{"GET", "/faults", testToken, 200},
	} {
		if r := do(t, tc.method, f.srv.URL+tc.path, tc.token, body); r.code != tc.want {
			t.Errorf("%s %s with %q: %d, want %d: %s", tc.method, tc.path, tc.token, r.code, tc.want, r.body)
		}
	}
	if fs := f.m.Faults(); len(fs) != 0 {
		t.Fatalf("started without the token: %+v", fs)
	}
}

// Bad bodies are refused with every problem named by its key.
func TestFaultsBadBodies(t *testing.T) {
	f := faultFixture(t, admin.Config{Token: testToken})
	for _, tc := range []struct {
		name, body string
		hdr        []string
		code       int
		fields     []string // problems' fields, in order
		says       string
	}{
		{"unknown key", `{"endpoint":"GET /x","percent":50,"status":500,"id":"mine"}`, nil, 400, nil, `unknown field "id"`},
		{"bad duration", `{"endpoint":"GET /x","percent":50,"status":500,"duration":"20 seconds","latency":"x"}`, nil, 400,
			[]string{"duration", "latency"}, "must be a duration"},
		{"bad fields", `{"endpoint":"","percent":0,"status":200,"abort":false,"header_value":"v","duration":"1h"}`, nil, 400,
			[]string{"endpoint", "percent", "status", "header_value", "duration"}, "core.Fault.Percent"},
		{"status and abort", `{"endpoint":"GET /x","percent":50,"status":500,"abort":true}`, nil, 400, []string{"abort"}, "abort"},
		{"wrong type", `{"endpoint":"GET /x","percent":"half"}`, nil, 400, nil, `"percent" must be a float64`},
		{"two objects", `{"endpoint":"GET /x","percent":50,"status":500}{}`, nil, 400, nil, "exactly one JSON object"},
		{"null", `null`, nil, 400, nil, "not null"},
		{"empty", ``, nil, 400, nil, "body is empty"},
		{"not JSON", `{"endpoint":`, nil, 400, nil, "not valid JSON"},
		{"too large", `{"reason":"` + strings.Repeat("x", 5000) + `"}`, nil, 413, nil, "larger than"},
		{"content type", `{}`, []string{"Content-Type", "text/plain"}, 415, nil, "Content-Type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, "POST", f.srv.URL+"/faults", testToken, tc.body, tc.hdr...)
			var p problemsBody
			r.json(t, &p)
			if r.code != tc.code || !strings.Contains(p.Error, tc.says) {
				t.Fatalf("%d %s", r.code, r.body)
			}
			var fields []string
			for _, pr := range p.Problems {
				fields = append(fields, pr.Field)
				if pr.Message == "" {
					t.Errorf("problem %+v has no message", pr)
				}
			}
			if strings.Join(fields, ",") != strings.Join(tc.fields, ",") {
				t.Fatalf("problems %v, want %v: %s", fields, tc.fields, r.body)
			}
		})
	}
	if fs := f.m.Faults(); len(fs) != 0 {
		t.Fatalf("a bad body started %+v", fs)
	}
	// Past MaxFaults: a conflict, not a bad body.
	for range 2 {
		if r := do(t, "POST", f.srv.URL+"/faults", testToken, `{"endpoint":"GET /x","percent":1,"abort":true}`); r.code != 201 {
			t.Fatalf("%d %s", r.code, r.body)
		}
	}
	if r := do(t, "POST", f.srv.URL+"/faults", testToken, `{"endpoint":"GET /x","percent":1,"abort":true}`); r.code != 409 {
		t.Fatalf("past MaxFaults: %d %s", r.code, r.body)
	}
}

func TestFaultsOff(t *testing.T) {
	f := newFixture(t, admin.Config{Token: testToken})
	var list faultsBody
	r := do(t, "GET", f.srv.URL+"/faults", testToken, "")
	r.json(t, &list)
	if r.code != 200 || list.Enabled || list.Faults == nil || len(list.Faults) != 0 || list.MaxDuration != "" {
		t.Fatalf("GET while off: %d %s", r.code, r.body)
	}
	for _, m := range []string{"POST /faults", "DELETE /faults/x"} {
		method, path, _ := strings.Cut(m, " ")
		r := do(t, method, f.srv.URL+path, testToken, `{"endpoint":"GET /x","percent":50,"status":500}`)
		if r.code != 404 || !strings.HasPrefix(r.errorText(t), "fault injection is off") {
			t.Fatalf("%s while off: %d %s", m, r.code, r.body)
		}
	}
}

// FuzzFaultBody feeds arbitrary bodies to POST …/faults: it never panics,
// answers with JSON, and starts an experiment only with a 201.
func FuzzFaultBody(f *testing.F) {
	for _, s := range []string{
		`{"endpoint":"GET /x","percent":50,"status":500,"duration":"20s"}`,
		`{"endpoint":"GET /x","percent":100,"latency":"1s","latency_max":"2s","header":"X-Chaos","header_value":"on","user":"ann","reason":"r"}`,
		`{"endpoint":"GET /x","percent":1e400}`, `{"endpoint":"GET /x","percent":-1,"abort":true}`, `{"duration":"-5s"}`,
		`{"endpoint":"\u0000","percent":50,"abort":true}`, `[]`, `null`, `{}`, `{"endpoint":"GET /x"}{}`, strings.Repeat("{", 5000),
	} {
		f.Add(s)
	}
	clock := core.NewFakeClock(seedTime)
	m := newManager(f, clock, core.ManagerConfig{Faults: &core.FaultLimits{MaxFaults: 10_000}})
	h, _ := newHandler(f, admin.Config{Manager: m, Token: testToken})
	f.Cleanup(func() {
		for _, x := range m.Faults() {
			m.StopFault(x.ID)
		}
	})
	f.Fuzz(func(t *testing.T, body string) {
		before := len(m.Faults())
		req := httptest.NewRequest("POST", "/faults", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%d: not JSON: %q", rec.Code, rec.Body)
		}
		after := len(m.Faults())
		switch rec.Code {
		case http.StatusCreated:
			var fb faultBody
			if err := json.Unmarshal(rec.Body.Bytes(), &fb); err != nil || fb.ID == "" || after != before+1 {
				t.Fatalf("201 with %q (%d running, %d before)", rec.Body, after, before)
			}
			m.StopFault(fb.ID)
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusConflict:
			if after != before {
				t.Fatalf("%d but an experiment started: %q", rec.Code, rec.Body)
			}
		default:
			t.Fatalf("unexpected %d: %q", rec.Code, rec.Body)
		}
	})
}
