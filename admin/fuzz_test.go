package admin_test

import (
	"encoding/json"
	"github.com/bulwark-go/bulwark/events"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bulwark-go/bulwark/admin"
	"github.com/bulwark-go/bulwark/core"
)

// FuzzControlBody feeds arbitrary bodies to the control route: it never
// panics, answers with JSON, and changes the breaker only for a valid body.
func FuzzControlBody(f *testing.F) {
	for _, s := range []string{
		`{"action":"force_open","reason":"maintenance"}`, `{"action":"reset"}`, `{"action":"reset","reason":""}`,
		`{"action":"disable","x":1}`, `{"action":"force_open"}{}`, `[]`, `null`, `"force_open"`, `{"action":null}`,
		`{"action":"force_open","reason":"\u0000"}`, `{"ACTION":"reset"}`, strings.Repeat("[", 5000),
	} {
		f.Add(s)
	}
	m := newManager(f, core.NewFakeClock(seedTime))
	b := breaker(f, m, "api")
	h, _ := newHandler(f, admin.Config{Manager: m, Token: testToken})
	f.Fuzz(func(t *testing.T, body string) {
		b.Reset()
		req := httptest.NewRequest("POST", "/breakers/api", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%d: not JSON: %q", rec.Code, rec.Body)
		}
		switch rec.Code {
		case http.StatusOK:
			var cr controlBody
			if err := json.Unmarshal(rec.Body.Bytes(), &cr); err != nil || cr.Endpoint != "api" {
				t.Fatalf("200 with %q", rec.Body)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			if b.State() != events.Closed {
				t.Fatalf("a refused body changed the breaker to %s", b.State())
			}
		default:
			t.Fatalf("status %d for %q", rec.Code, body)
		}
	})
}

// FuzzPaths sends arbitrary paths to every method: no panic, and every
// answer that is not the page or an asset is JSON.
func FuzzPaths(f *testing.F) {
	for _, s := range []string{"/", "/status", "/status/GET%20%2Fusers", "/status/%FF", "/events?since=x", "/breakers/",
		"/ui/app.js", "/ws", "/status/" + strings.Repeat("%41", 300), "//status", "/status/a%2F..%2F..%2Fb", "/config/GET%20%2Fusers", "/config/"} {
		f.Add("GET", s)
		f.Add("POST", s)
		f.Add("DELETE", s)
	}
	m := newManager(f, core.NewFakeClock(seedTime))
	breaker(f, m, "GET /users")
	h, _ := newHandler(f, admin.Config{Manager: m, Prefix: "/admin", Settings: newFakeSettings(m)})
	f.Fuzz(func(t *testing.T, method, path string) {
		req, err := http.NewRequest(method, "http://example.com/admin"+path, nil)
		if err != nil {
			return // not a request a server could receive
		}
		req.RequestURI = req.URL.RequestURI()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		ct := rec.Header().Get("Content-Type")
		if rec.Code != http.StatusMovedPermanently && strings.HasPrefix(ct, "application/json") && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %s: %d not JSON: %q", method, path, rec.Code, rec.Body)
		}
		if rec.Code >= 500 {
			t.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
		}
	})
}

// FuzzSettingsBody feeds arbitrary bodies to PUT …/config/{endpoint}: no
// panic, always JSON, and only a JSON object reaches Settings.Reconfigure.
func FuzzSettingsBody(f *testing.F) {
	for _, s := range []string{
		`{"breaker":{"failure_threshold":10}}`, `{"breaker":{"timeout":"30s"}}`, `{"breaker":{"failure_threshold":0}}`,
		`{}`, `[]`, `null`, `"x"`, `{"a":1}{"b":2}`, `{"breaker":`, strings.Repeat("{", 5000), "\xff",
	} {
		f.Add(s)
	}
	m := newManager(f, core.NewFakeClock(seedTime))
	breaker(f, m, "api")
	s := newFakeSettings(m)
	h, _ := newHandler(f, admin.Config{Manager: m, Token: testToken, Settings: s})
	f.Fuzz(func(t *testing.T, body string) {
		before := s.calls()
		req := httptest.NewRequest("PUT", "/config/api", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%d: not JSON: %q", rec.Code, rec.Body)
		}
		called := s.calls() > before
		var obj map[string]json.RawMessage
		isObject := len(body) <= 64<<10 && json.Unmarshal([]byte(body), &obj) == nil && obj != nil
		if called != isObject {
			t.Fatalf("body %q: Reconfigure called %v", body, called)
		}
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d for %q", rec.Code, body)
		}
	})
}
