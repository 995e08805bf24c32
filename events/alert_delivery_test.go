package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// hook is a webhook receiver whose answers are scripted per request.
type hook struct {
	srv *httptest.Server

	mu       sync.Mutex
	script   []func(w http.ResponseWriter) // consumed in order; then 200
	requests []WebhookPayload              // every request, whatever the answer
	accepted []WebhookPayload              // those answered 2xx
	raw      [][]byte
	arrived  chan struct{}
	block    chan struct{} // when non-nil, requests wait on it (or their context)
}

func newHook(t *testing.T) *hook {
	h := &hook{arrived: make(chan struct{}, 100)}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var p WebhookPayload
	_ = json.Unmarshal(body, &p)
	h.mu.Lock()
	h.requests = append(h.requests, p)
	h.raw = append(h.raw, body)
	block := h.block
	var step func(http.ResponseWriter)
	if len(h.script) > 0 {
		step, h.script = h.script[0], h.script[1:]
	}
	h.mu.Unlock()
	h.arrived <- struct{}{}
	if block != nil {
		select {
		case <-block:
		case <-r.Context().Done():
			return
		}
	}
	if step != nil {
		step(w)
		return
	}
	h.mu.Lock()
	h.accepted = append(h.accepted, p)
	h.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (h *hook) then(steps ...func(w http.ResponseWriter)) {
	h.mu.Lock()
	h.script = append(h.script, steps...)
	h.mu.Unlock()
}

func status(code int, header ...string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, http.StatusText(code))
	}
}

func (h *hook) acceptedIDs() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var ids []string
	for _, p := range h.accepted {
		ids = append(ids, p.Alerts[0].Fingerprint+"/"+p.Status)
	}
	return ids
}

// waits records the retry waits asked of the After hook and fires at once,
// so no test sleeps through a backoff.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) after(d time.Duration) <-chan time.Time {
	w.mu.Lock()
	w.d = append(w.d, d)
	w.mu.Unlock()
	c := make(chan time.Time, 1)
	c <- time.Time{}
	return c
}

func (w *waits) get() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.d...)
}

func TestDeliveryConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		d     DeliveryConfig
		field string
	}{
		{DeliveryConfig{QueueSize: -1}, "QueueSize"},
		{DeliveryConfig{QueueSize: MaxQueueSize + 1}, "QueueSize"},
		{DeliveryConfig{Timeout: -1}, "Timeout"},
		{DeliveryConfig{MaxAttempts: 101}, "MaxAttempts"},
		{DeliveryConfig{BaseBackoff: -1}, "BaseBackoff"},
		{DeliveryConfig{BaseBackoff: time.Minute, MaxBackoff: time.Second}, "MaxBackoff"},
		{DeliveryConfig{MaxRetryAfter: -1}, "MaxRetryAfter"},
		{DeliveryConfig{DrainTimeout: -1}, "DrainTimeout"},
	} {
		_, err := NewWebhookHandler(WebhookConfig{URL: "http://example.invalid/hook", Delivery: tc.d})
		if err == nil || !strings.Contains(err.Error(), "WebhookConfig.Delivery."+tc.field) {
			t.Errorf("%+v: error %v, want one naming %s", tc.d, err, tc.field)
		}
	}
	for _, u := range []string{"", "ftp://x/y", "/relative", "http://"} {
		if _, err := NewWebhookHandler(WebhookConfig{URL: u}); err == nil || !strings.Contains(err.Error(), "WebhookConfig.URL") {
			t.Errorf("URL %q: error %v", u, err)
		}
	}
	_, err := NewSlackHandler(SlackConfig{WebhookURL: "gopher://hooks.slack.com/services/T000/B000/SECRET"})
	if err == nil || !strings.Contains(err.Error(), "SlackConfig.WebhookURL") || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("Slack URL error %v: want the field named and the token hidden", err)
	}
	if _, err := NewLogHandler(LogConfig{}); err == nil || !strings.Contains(err.Error(), "LogConfig.Logger") {
		t.Errorf("nil logger: %v", err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 10, 8, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"7", 7 * time.Second, true},
		{" 0 ", 0, true},
		{"-3", 0, false},
		{"", 0, false},
		{"soon", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"99999999999", 24 * time.Hour, true},
	} {
		got, ok := parseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestBackoffGrowsAndKeepsJitterAtCap(t *testing.T) {
	q := &queue{cfg: DeliveryConfig{BaseBackoff: time.Second, MaxBackoff: 8 * time.Second}}
	for attempt, ceil := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 9: 8 * time.Second} {
		seen := make(map[time.Duration]bool)
		for range 50 {
			d := q.backoff(attempt)
			if d < ceil/2 || d > ceil {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", attempt, d, ceil/2, ceil)
			}
			seen[d] = true
		}
		if len(seen) < 2 {
			t.Fatalf("backoff(%d) has no jitter", attempt)
		}
	}
}

// Failures, throttling and recovery: every alert that can be delivered is
// accepted exactly once, in order; retries honour Retry-After (seconds and
// date, capped); a 4xx other than 429 is not retried.
func TestWebhookRetryAndOrder(t *testing.T) {
	hk := newHook(t)
	now := time.Date(2025, 10, 8, 12, 0, 0, 0, time.UTC)
	hk.then(
		status(500),                     // alert 1, attempt 1: backoff
		status(429, "Retry-After", "3"), // attempt 2: 3s
		status(503, "Retry-After", now.Add(20*time.Second).Format(http.TimeFormat)), // attempt 3: 20s
		status(429, "Retry-After", "3600"),                                          // attempt 4: capped to MaxRetryAfter
	) // attempt 5: accepted
	w := &waits{}
	h, err := NewWebhookHandler(WebhookConfig{
		URL:    hk.srv.URL + "/hook",
		Header: http.Header{"Authorization": {"Bearer t"}},
		Client: hk.srv.Client(),
		Delivery: DeliveryConfig{
			MaxAttempts: 5, BaseBackoff: 100 * time.Millisecond, MaxBackoff: time.Second,
			MaxRetryAfter: 30 * time.Second, After: w.after, Now: func() time.Time { return now },
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := NewAlertManager(AlertManagerConfig{})
	m.AddHandler(h)

	a1 := m.Fire(Alert{Severity: Critical, Message: "one", Type: AlertType{Metadata: map[string]string{MetaEndpoint: "api"}}})
	a2 := m.Fire(Alert{Severity: Warning, Message: "two"})
	m.Resolve(a1.ID)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	// Alert 1 took 5 attempts, then alert 2 and the resolution of 1 went
	// through at once.
	want := []string{a1.ID + "/firing", a2.ID + "/firing", a1.ID + "/resolved"}
	if got := hk.acceptedIDs(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("accepted %v\nwant     %v", got, want)
	}
	ws := w.get()
	if len(ws) != 4 || ws[0] < 50*time.Millisecond || ws[0] > 100*time.Millisecond || ws[1] != 3*time.Second || ws[2] != 20*time.Second || ws[3] != 30*time.Second {
		t.Fatalf("waits %v, want [backoff 3s 20s 30s]", ws)
	}
	st := h.Stats()
	if st.Sent != 3 || st.Retried != 4 || st.Failed != 0 || st.Dropped != 0 || st.Queued != 0 {
		t.Fatalf("stats %+v", st)
	}
	hk.mu.Lock()
	defer hk.mu.Unlock()
	if len(hk.requests) != 7 {
		t.Fatalf("%d requests, want 7", len(hk.requests))
	}
}

func TestWebhookNoRetryOn4xx(t *testing.T) {
	hk := newHook(t)
	hk.then(status(400), status(404))
	w := &waits{}
	h, _ := NewWebhookHandler(WebhookConfig{URL: hk.srv.URL, Client: hk.srv.Client(), Delivery: DeliveryConfig{After: w.after}})
	h.HandleAlert(Alert{ID: "a"})
	h.HandleAlert(Alert{ID: "b"})
	h.HandleAlert(Alert{ID: "c"})
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if st := h.Stats(); st.Failed != 2 || st.Sent != 1 || st.Retried != 0 {
		t.Fatalf("stats %+v", st)
	}
	if len(w.get()) != 0 {
		t.Fatal("waited before retrying a 4xx")
	}
}

func TestWebhookAttemptsExhausted(t *testing.T) {
	hk := newHook(t)
	hk.then(status(502), status(502), status(502))
	w := &waits{}
	h, _ := NewWebhookHandler(WebhookConfig{URL: hk.srv.URL, Client: hk.srv.Client(), Delivery: DeliveryConfig{MaxAttempts: 3, After: w.after}})
	h.HandleAlert(Alert{ID: "a"})
	h.HandleAlert(Alert{ID: "b"})
	_ = h.Close()
	if st := h.Stats(); st.Failed != 1 || st.Retried != 2 || st.Sent != 1 {
		t.Fatalf("stats %+v", st)
	}
	if got := hk.acceptedIDs(); len(got) != 1 || got[0] != "b/firing" {
		t.Fatalf("accepted %v", got)
	}
}

// A dead endpoint (connection refused) is retried like a 5xx, then given up.
func TestWebhookDeadEndpoint(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	w := &waits{}
	h, _ := NewWebhookHandler(WebhookConfig{URL: url, Delivery: DeliveryConfig{MaxAttempts: 2, After: w.after}})
	h.HandleAlert(Alert{ID: "a"})
	_ = h.Close()
	if st := h.Stats(); st.Failed != 1 || st.Retried != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// Each attempt is bounded by Delivery.Timeout.
func TestWebhookSendTimeout(t *testing.T) {
	hk := newHook(t)
	hk.block = make(chan struct{}) // never released: requests end by their context
	h, _ := NewWebhookHandler(WebhookConfig{URL: hk.srv.URL, Client: hk.srv.Client(), Delivery: DeliveryConfig{MaxAttempts: 1, Timeout: 50 * time.Millisecond}})
	h.HandleAlert(Alert{ID: "a"})
	<-hk.arrived
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if st := h.Stats(); st.Failed != 1 || st.Sent != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// A hung webhook blocks neither the AlertManager nor the bus: the queue
// fills, the rest is dropped and counted, and Close gives up at its deadline.
func TestWebhookHungNeverBlocks(t *testing.T) {
	hk := newHook(t)
	hk.block = make(chan struct{})
	h, _ := NewWebhookHandler(WebhookConfig{URL: hk.srv.URL, Client: hk.srv.Client(), Delivery: DeliveryConfig{QueueSize: 2, Timeout: time.Hour}})
	bus := NewBus()
	sub := bus.Subscribe(100)
	defer sub.Close()
	m, _ := NewAlertManager(AlertManagerConfig{Bus: bus})
	m.AddHandler(h)

	m.Fire(Alert{Message: "first"})
	<-hk.arrived // the sender is now stuck in the request
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 10 {
			m.Fire(Alert{Message: "more"})
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Fire blocked on a hung webhook")
	}
	if len(sub.C()) != 11 {
		t.Fatalf("bus got %d alerts, want 11", len(sub.C()))
	}
	if st := h.Stats(); st.Dropped != 8 || st.Queued != 2 {
		t.Fatalf("stats %+v, want 8 dropped and 2 queued", st)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // deadline already passed: abandon everything
	err := h.Shutdown(ctx)
	if !errors.Is(err, ErrHandlerClosed) {
		t.Fatalf("Shutdown = %v, want ErrHandlerClosed", err)
	}
	st := h.Stats()
	if st.Failed != 1 || st.Dropped != 10 || st.Sent != 0 {
		t.Fatalf("after shutdown: %+v", st)
	}
	h.HandleAlert(Alert{ID: "late"})
	if h.Stats().Dropped != 11 {
		t.Fatal("alert after Close not counted as dropped")
	}
	if err := h.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// Close sends what is queued before returning.
func TestWebhookCloseDrains(t *testing.T) {
	hk := newHook(t)
	h, _ := NewWebhookHandler(WebhookConfig{URL: hk.srv.URL, Client: hk.srv.Client()})
	for _, id := range []string{"a", "b", "c"} {
		h.HandleAlert(Alert{ID: id})
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if got := hk.acceptedIDs(); strings.Join(got, ",") != "a/firing,b/firing,c/firing" {
		t.Fatalf("accepted %v", got)
	}
}

func TestWebhookPayload(t *testing.T) {
	start := time.Date(2025, 10, 8, 12, 0, 0, 0, time.UTC)
	a := Alert{ID: "id-1", Timestamp: start, Severity: Critical, Message: "long", Type: AlertType{
		Kind: AlertKindCustom, Message: "short",
		Metadata: map[string]string{MetaAlertName: AlertNameBreakerOpen, MetaEndpoint: "api", MetaReason: "r"},
	}}
	p := NewWebhookPayload("rx", a)
	b, _ := json.Marshal(p)
	for _, want := range []string{
		`"version":"4"`, `"status":"firing"`, `"receiver":"rx"`,
		`"labels":{"alertname":"CircuitBreakerOpen","endpoint":"api","severity":"critical"}`,
		`"annotations":{"description":"long","reason":"r","summary":"short"}`,
		`"startsAt":"2025-10-08T12:00:00Z","endsAt":"0001-01-01T00:00:00Z"`, `"fingerprint":"id-1"`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("payload lacks %s:\n%s", want, b)
		}
	}
	end := start.Add(time.Hour)
	a.Resolved, a.ResolvedAt = true, &end
	p = NewWebhookPayload("rx", a)
	if p.Status != "resolved" || p.Alerts[0].Status != "resolved" || !p.Alerts[0].EndsAt.Equal(end) {
		t.Fatalf("resolved payload %+v", p)
	}
	if p := NewWebhookPayload("rx", Alert{}); p.Alerts[0].Labels["alertname"] != "BulwarkAlert" {
		t.Fatalf("default alertname: %v", p.Alerts[0].Labels)
	}
}

func TestSlackHandler(t *testing.T) {
	hk := newHook(t)
	hk.then(status(429, "Retry-After", "1"))
	w := &waits{}
	h, err := NewSlackHandler(SlackConfig{WebhookURL: hk.srv.URL + "/services/T/B/secret", Client: hk.srv.Client(), Delivery: DeliveryConfig{After: w.after}})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 10, 8, 12, 0, 0, 0, time.UTC)
	h.HandleAlert(Alert{ID: "x", Timestamp: at, Severity: Critical, Message: "Breaker for 'a<b>' opened & stuck", Type: AlertType{
		Message: "Circuit breaker opened for a", Metadata: map[string]string{MetaEndpoint: "a<b>", MetaReason: "boom", MetaAlertName: "hidden"},
	}})
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if st := h.Stats(); st.Sent != 1 || st.Retried != 1 {
		t.Fatalf("stats %+v", st)
	}
	if ws := w.get(); len(ws) != 1 || ws[0] != time.Second {
		t.Fatalf("waits %v", ws)
	}
	hk.mu.Lock()
	raw := hk.raw[len(hk.raw)-1]
	hk.mu.Unlock()
	var msg SlackMessage
	if err := json.Unmarshal(raw, &msg); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(msg.Text, ":rotating_light: [CRITICAL] Breaker for") {
		t.Fatalf("text %q", msg.Text)
	}
	if len(msg.Blocks) != 4 || msg.Blocks[0].Type != "header" || msg.Blocks[1].Type != "section" || msg.Blocks[3].Type != "context" {
		t.Fatalf("blocks %s", raw)
	}
	if got := msg.Blocks[1].Text.Text; !strings.Contains(got, "'a&lt;b&gt;' opened &amp; stuck") {
		t.Fatalf("section not escaped: %q", got)
	}
	if f := msg.Blocks[2].Fields; len(f) != 2 || f[0].Text != "*endpoint*\na&lt;b&gt;" || f[1].Text != "*reason*\nboom" {
		t.Fatalf("fields %+v", f)
	}

	end := at.Add(time.Minute)
	r := NewSlackMessage(Alert{Severity: Warning, Message: strings.Repeat("é", 200), Resolved: true, ResolvedAt: &end})
	if !strings.HasPrefix(r.Text, ":white_check_mark: [RESOLVED]") || !strings.Contains(r.Blocks[len(r.Blocks)-1].Elements[0].Text, "resolved 2025-10-08 12:01:00Z") {
		t.Fatalf("resolved message %+v", r)
	}
	if n := len([]rune(r.Blocks[0].Text.Text)); n != slackHeaderMax {
		t.Fatalf("header has %d runes, want it cut to %d", n, slackHeaderMax)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestLogHandler(t *testing.T) {
	var buf lockedBuffer
	h, err := NewLogHandler(LogConfig{Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := NewAlertManager(AlertManagerConfig{})
	m.AddHandler(h)
	a := m.Fire(Alert{Severity: Critical, Message: "down", Type: AlertType{Message: "s", Metadata: map[string]string{"endpoint": "api"}}})
	m.Fire(Alert{Severity: Warning, Message: "slow"})
	m.Resolve(a.ID)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d log lines:\n%s", len(lines), buf.String())
	}
	for i, want := range []string{
		`"level":"ERROR","msg":"alert fired","id":"` + a.ID,
		`"level":"WARN","msg":"alert fired"`,
		`"level":"INFO","msg":"alert resolved","id":"` + a.ID,
	} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d = %s\nwant it to contain %s", i, lines[i], want)
		}
	}
	if !strings.Contains(lines[0], `"metadata":{"endpoint":"api"}`) {
		t.Errorf("metadata missing: %s", lines[0])
	}
	if st := h.Stats(); st.Sent != 3 {
		t.Fatalf("stats %+v", st)
	}
}

// End to end: a breaker transition on the bus becomes an Alertmanager-style
// firing post and, on close, a resolved post for the same alert.
func TestBreakerAlertToWebhook(t *testing.T) {
	hk := newHook(t)
	h, _ := NewWebhookHandler(WebhookConfig{URL: hk.srv.URL, Client: hk.srv.Client()})
	bus := NewBus()
	m, _ := NewAlertManager(AlertManagerConfig{})
	m.AddHandler(h)
	cb, _ := NewCircuitBreakerAlertHandler(m, bus)
	cb.Start()
	bus.Publish(StateChange{Endpoint: "api", OldState: Closed, NewState: Open, Reason: "Failure threshold exceeded"})
	bus.Publish(StateChange{Endpoint: "api", OldState: Open, NewState: HalfOpen})
	bus.Publish(StateChange{Endpoint: "api", OldState: HalfOpen, NewState: Closed})
	cb.Close()
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	hk.mu.Lock()
	defer hk.mu.Unlock()
	if len(hk.accepted) != 2 {
		t.Fatalf("%d posts, want 2", len(hk.accepted))
	}
	f, r := hk.accepted[0], hk.accepted[1]
	if f.Status != "firing" || r.Status != "resolved" || f.Alerts[0].Fingerprint != r.Alerts[0].Fingerprint ||
		f.Alerts[0].Labels["endpoint"] != "api" || f.Alerts[0].Labels["severity"] != "critical" ||
		f.Alerts[0].Annotations["reason"] != "Failure threshold exceeded" {
		t.Fatalf("posts:\n%+v\n%+v", f, r)
	}
}
