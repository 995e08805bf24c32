package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bulwark-go/bulwark/events"
)

// receiver is an in-memory webhook receiver: an http.RoundTripper whose
// answers are scripted per request. Inside a synctest bubble nothing it
// does takes time, so the times it records are exactly the waits between
// attempts.
type receiver struct {
	mu       sync.Mutex
	script   []func(*http.Request) (*http.Response, error) // consumed in order; then 200
	requests []request
	hang     bool // requests wait for their context to end
}

type request struct {
	at, end time.Time // when it arrived and when it was answered
	header  http.Header
	body    []byte
	payload webhookPayload
}

// senderStats is what a sender counted.
type senderStats struct {
	Sent, Failed, Dropped, Retried uint64
	Queued                         int
}

func statsOf(s *Sender) senderStats {
	q := s.q
	return senderStats{
		Sent: q.sent.Load(), Failed: q.failed.Load(), Dropped: q.dropped.Load(), Retried: q.retried.Load(),
		Queued: len(q.ch),
	}
}

func (rx *receiver) client() *http.Client { return &http.Client{Transport: rx} }

func (rx *receiver) RoundTrip(r *http.Request) (*http.Response, error) {
	body, _ := io.ReadAll(r.Body)
	req := request{at: time.Now(), header: r.Header.Clone(), body: body}
	_ = json.Unmarshal(body, &req.payload)
	rx.mu.Lock()
	var step func(*http.Request) (*http.Response, error)
	if len(rx.script) > 0 {
		step, rx.script = rx.script[0], rx.script[1:]
	}
	hang := rx.hang
	rx.mu.Unlock()
	var resp *http.Response
	var err error
	switch {
	case hang:
		<-r.Context().Done()
		err = r.Context().Err()
	case step != nil:
		resp, err = step(r)
	default:
		resp = answer(http.StatusOK)()
	}
	req.end = time.Now()
	rx.mu.Lock()
	rx.requests = append(rx.requests, req)
	rx.mu.Unlock()
	return resp, err
}

func (rx *receiver) then(steps ...func(*http.Request) (*http.Response, error)) {
	rx.mu.Lock()
	rx.script = append(rx.script, steps...)
	rx.mu.Unlock()
}

func (rx *receiver) all() []request {
	rx.mu.Lock()
	defer rx.mu.Unlock()
	return append([]request(nil), rx.requests...)
}

func answer(code int, header ...string) func() *http.Response {
	return func() *http.Response {
		h := http.Header{}
		for i := 0; i+1 < len(header); i += 2 {
			h.Set(header[i], header[i+1])
		}
		return &http.Response{
			StatusCode: code, Status: fmt.Sprintf("%d %s", code, http.StatusText(code)),
			Header: h, Body: io.NopCloser(strings.NewReader(http.StatusText(code))),
		}
	}
}

func status(code int, header ...string) func(*http.Request) (*http.Response, error) {
	a := answer(code, header...)
	return func(*http.Request) (*http.Response, error) { return a(), nil }
}

func failure(err error) func(*http.Request) (*http.Response, error) {
	return func(*http.Request) (*http.Response, error) { return nil, err }
}

func webhook(t *testing.T, rx *receiver, d DeliveryConfig) *Sender {
	t.Helper()
	h, err := NewWebhookHandler(WebhookConfig{URL: "https://alerts.example/hook", Client: rx.client(), Delivery: d})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close(context.Background()) })
	return h
}

// Failures, throttling and recovery: every alert that can be delivered is
// accepted exactly once, in order; the waits between attempts are the
// backoff, or what Retry-After asks (seconds or a date) capped at
// MaxRetryAfter.
func TestWebhookRetryAndOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rx := &receiver{}
		rx.then(
			status(500),                     // alert 1, attempt 1: backoff
			status(429, "Retry-After", "3"), // attempt 2: 3s
			func(*http.Request) (*http.Response, error) { // attempt 3: until a date 20s on
				return answer(503, "Retry-After", time.Now().Add(20*time.Second).UTC().Format(http.TimeFormat))(), nil
			},
			status(429, "Retry-After", "3600"), // attempt 4: capped to MaxRetryAfter
		) // attempt 5: accepted
		h := webhook(t, rx, DeliveryConfig{MaxAttempts: 5, BaseBackoff: 100 * time.Millisecond, MaxBackoff: time.Second, MaxRetryAfter: 30 * time.Second})
		m, _ := NewManager(ManagerConfig{Handlers: []Handler{h}})

		a1 := m.Fire(Alert{Severity: Critical, Message: "one", Type: Type{Metadata: map[string]string{MetaEndpoint: "api"}}})
		a2 := m.Fire(Alert{Severity: Warning, Message: "two"})
		m.Resolve(a1.ID)
		if err := h.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		reqs := rx.all()
		if len(reqs) != 7 {
			t.Fatalf("%d requests, want 7", len(reqs))
		}
		var gaps []time.Duration
		for i := 1; i < 5; i++ {
			gaps = append(gaps, reqs[i].at.Sub(reqs[i-1].end))
		}
		date, _ := http.ParseTime(answerDate(t, reqs[2]))
		if gaps[0] < 80*time.Millisecond || gaps[0] > 120*time.Millisecond || gaps[1] != 3*time.Second ||
			!reqs[3].at.Equal(date) || gaps[3] != 30*time.Second {
			t.Fatalf("waits %v, want [100ms±20%% 3s until-the-date 30s]", gaps)
		}
		// Alert 2 and the resolution of 1 went through at once.
		var got []string
		for _, r := range reqs[4:] {
			got = append(got, r.payload.Alerts[0].Fingerprint+"/"+r.payload.Status)
			if !r.at.Equal(reqs[4].at) {
				t.Fatal("a later alert waited")
			}
		}
		if want := []string{a1.ID + "/firing", a2.ID + "/firing", a1.ID + "/resolved"}; strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("accepted %v\nwant     %v", got, want)
		}
		if st := statsOf(h); st.Sent != 3 || st.Retried != 4 || st.Failed != 0 || st.Dropped != 0 || st.Queued != 0 {
			t.Fatalf("stats %+v", st)
		}
		if ct := reqs[0].header.Get("Content-Type"); ct != "application/json" || reqs[0].header.Get("User-Agent") != userAgent {
			t.Fatalf("headers %v", reqs[0].header)
		}
	})
}

// answerDate recomputes the Retry-After date the scripted 503 sent: 20s
// after the request ended, in HTTP-date precision.
func answerDate(t *testing.T, r request) string {
	t.Helper()
	return r.end.Add(20 * time.Second).UTC().Format(http.TimeFormat)
}

// The backoff doubles per retry up to MaxBackoff, spread by ±20%.
func TestWebhookBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rx := &receiver{}
		for range 5 {
			rx.then(status(502))
		}
		h := webhook(t, rx, DeliveryConfig{MaxAttempts: 6, BaseBackoff: time.Second, MaxBackoff: 4 * time.Second})
		h.HandleAlert(Alert{ID: "a"})
		if err := h.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		reqs := rx.all()
		if len(reqs) != 6 {
			t.Fatalf("%d requests", len(reqs))
		}
		for i, base := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second} {
			gap := reqs[i+1].at.Sub(reqs[i].end)
			if gap < base*8/10 || gap > base*12/10 {
				t.Errorf("wait %d = %v, want %v±20%%", i+1, gap, base)
			}
		}
	})
}

func TestWebhookNoRetryOn4xx(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rx := &receiver{}
		rx.then(status(400), status(404))
		h := webhook(t, rx, DeliveryConfig{})
		for _, id := range []string{"a", "b", "c"} {
			h.HandleAlert(Alert{ID: id})
		}
		start := time.Now()
		if err := h.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if st := statsOf(h); st.Failed != 2 || st.Sent != 1 || st.Retried != 0 {
			t.Fatalf("stats %+v", st)
		}
		if d := time.Since(start); d != 0 {
			t.Fatalf("waited %v before giving up on a 4xx", d)
		}
	})
}

// A transport error (connection refused, say) is retried like a 5xx, then
// given up on.
func TestWebhookAttemptsExhausted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rx := &receiver{}
		refused := errors.New("connect: connection refused")
		rx.then(failure(refused), status(502), failure(refused))
		h := webhook(t, rx, DeliveryConfig{MaxAttempts: 3})
		h.HandleAlert(Alert{ID: "a"})
		h.HandleAlert(Alert{ID: "b"})
		if err := h.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if st := statsOf(h); st.Failed != 1 || st.Retried != 2 || st.Sent != 1 {
			t.Fatalf("stats %+v", st)
		}
		if reqs := rx.all(); len(reqs) != 4 || reqs[3].payload.Alerts[0].Fingerprint != "b" {
			t.Fatalf("requests %+v", reqs)
		}
	})
}

// Each attempt ends at Delivery.Timeout.
func TestWebhookSendTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rx := &receiver{hang: true}
		h := webhook(t, rx, DeliveryConfig{MaxAttempts: 2, Timeout: 50 * time.Millisecond, BaseBackoff: time.Second})
		h.HandleAlert(Alert{ID: "a"})
		if err := h.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		reqs := rx.all()
		if len(reqs) != 2 {
			t.Fatalf("%d attempts", len(reqs))
		}
		for _, r := range reqs {
			if d := r.end.Sub(r.at); d != 50*time.Millisecond {
				t.Fatalf("attempt lasted %v, want the 50ms timeout", d)
			}
		}
		if st := statsOf(h); st.Failed != 1 || st.Sent != 0 || st.Retried != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
}

// A hung webhook blocks neither the Manager nor the bus: the queue fills,
// the rest is dropped and counted, and Close gives up at its deadline.
func TestWebhookHungNeverBlocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rx := &receiver{hang: true}
		h := webhook(t, rx, DeliveryConfig{QueueSize: 2, Timeout: time.Hour})
		bus := events.NewBus()
		sub := bus.Subscribe(100)
		defer sub.Close()
		m, _ := NewManager(ManagerConfig{Handlers: []Handler{h}})
		m.bus = bus

		m.Fire(Alert{Message: "first"})
		synctest.Wait() // the sender is now stuck in the request
		start := time.Now()
		for range 10 {
			m.Fire(Alert{Message: "more"})
		}
		if time.Since(start) != 0 {
			t.Fatal("Fire waited on a hung webhook")
		}
		if len(sub.C()) != 11 {
			t.Fatalf("bus got %d alerts, want 11", len(sub.C()))
		}
		if st := statsOf(h); st.Dropped != 8 || st.Queued != 2 {
			t.Fatalf("stats %+v, want 8 dropped and 2 queued", st)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := h.Close(ctx)
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "3 alerts not delivered") || time.Since(start) != 5*time.Second {
			t.Fatalf("Close = %v after %v, want the deadline after 5s", err, time.Since(start))
		}
		synctest.Wait() // the goroutine ends once the request is cancelled
		if st := statsOf(h); st.Failed != 1 || st.Dropped != 10 || st.Sent != 0 || st.Queued != 0 {
			t.Fatalf("after Close: %+v", st)
		}
		h.HandleAlert(Alert{ID: "late"})
		if statsOf(h).Dropped != 11 {
			t.Fatal("alert after Close not counted as dropped")
		}
		if err := h.Close(ctx); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})
}

// Close sends what is queued, retries included, before returning.
func TestWebhookCloseDrains(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rx := &receiver{}
		rx.then(status(503, "Retry-After", "10"))
		h := webhook(t, rx, DeliveryConfig{})
		for _, id := range []string{"a", "b", "c"} {
			h.HandleAlert(Alert{ID: id})
		}
		start := time.Now()
		if err := h.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range rx.all()[1:] {
			got = append(got, r.payload.Alerts[0].Fingerprint)
		}
		if strings.Join(got, ",") != "a,b,c" || time.Since(start) != 10*time.Second {
			t.Fatalf("accepted %v after %v", got, time.Since(start))
		}
	})
}

func TestWebhookPayload(t *testing.T) {
	start := time.Date(2025, 10, 8, 12, 0, 0, 0, time.UTC)
	a := Alert{ID: "id-1", Timestamp: start, Severity: Critical, Message: "long", Type: Type{
		Kind: "custom", Message: "short",
		Metadata: map[string]string{MetaAlertName: nameBreakerOpen, MetaEndpoint: "api", "reason": "r"},
	}}
	b, _ := json.Marshal(newWebhookPayload("rx", a))
	want := `{"version":"4","groupKey":"id-1","status":"firing","receiver":"rx","groupLabels":{"alertname":"CircuitBreakerOpen"},` +
		`"commonLabels":{"alertname":"CircuitBreakerOpen","endpoint":"api","severity":"critical"},` +
		`"commonAnnotations":{"description":"long","reason":"r","summary":"short"},"externalURL":"",` +
		`"alerts":[{"status":"firing","labels":{"alertname":"CircuitBreakerOpen","endpoint":"api","severity":"critical"},` +
		`"annotations":{"description":"long","reason":"r","summary":"short"},` +
		`"startsAt":"2025-10-08T12:00:00Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"","fingerprint":"id-1"}]}`
	if string(b) != want {
		t.Fatalf("payload\n got %s\nwant %s", b, want)
	}
	end := start.Add(time.Hour)
	a.Resolved, a.ResolvedAt = true, &end
	p := newWebhookPayload("rx", a)
	if p.Status != "resolved" || p.Alerts[0].Status != "resolved" || !p.Alerts[0].EndsAt.Equal(end) {
		t.Fatalf("resolved payload %+v", p)
	}
	if p := newWebhookPayload("rx", Alert{}); p.Alerts[0].Labels["alertname"] != "BulwarkAlert" {
		t.Fatalf("default alertname: %v", p.Alerts[0].Labels)
	}
}

func TestSlackHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rx := &receiver{}
		rx.then(status(429, "Retry-After", "1"))
		h, err := NewSlackHandler(SlackConfig{WebhookURL: "https://hooks.slack.example/services/T/B/secret", Client: rx.client()})
		if err != nil {
			t.Fatal(err)
		}
		at := time.Date(2025, 10, 8, 12, 0, 0, 0, time.UTC)
		h.HandleAlert(Alert{ID: "x", Timestamp: at, Severity: Critical, Message: "Breaker for 'a<b>' opened & stuck", Type: Type{
			Message: "Circuit breaker opened for a", Metadata: map[string]string{MetaEndpoint: "a<b>", "reason": "boom", MetaAlertName: "hidden"},
		}})
		if err := h.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if st := statsOf(h); st.Sent != 1 || st.Retried != 1 {
			t.Fatalf("stats %+v", st)
		}
		reqs := rx.all()
		if len(reqs) != 2 || reqs[1].at.Sub(reqs[0].end) != time.Second {
			t.Fatalf("requests %+v", reqs)
		}
		var msg slackMessage
		if err := json.Unmarshal(reqs[1].body, &msg); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(msg.Text, ":rotating_light: [CRITICAL] Breaker for") {
			t.Fatalf("text %q", msg.Text)
		}
		if len(msg.Blocks) != 4 || msg.Blocks[0].Type != "header" || msg.Blocks[1].Type != "section" || msg.Blocks[3].Type != "context" {
			t.Fatalf("blocks %s", reqs[1].body)
		}
		if got := msg.Blocks[1].Text.Text; !strings.Contains(got, "'a&lt;b&gt;' opened &amp; stuck") {
			t.Fatalf("section not escaped: %q", got)
		}
		if f := msg.Blocks[2].Fields; len(f) != 2 || f[0].Text != "*endpoint*\na&lt;b&gt;" || f[1].Text != "*reason*\nboom" {
			t.Fatalf("fields %+v", f)
		}
	})

	end := time.Date(2025, 10, 8, 12, 1, 0, 0, time.UTC)
	r := newSlackMessage(Alert{Severity: Warning, Message: strings.Repeat("é", 200), Resolved: true, ResolvedAt: &end})
	if !strings.HasPrefix(r.Text, ":white_check_mark: [RESOLVED]") || !strings.Contains(r.Blocks[len(r.Blocks)-1].Elements[0].Text, "resolved 2025-10-08 12:01:00Z") {
		t.Fatalf("resolved message %+v", r)
	}
	if n := len([]rune(r.Blocks[0].Text.Text)); n != slackHeaderMax {
		t.Fatalf("header has %d runes, want it cut to %d", n, slackHeaderMax)
	}
}

func TestLogHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf syncBuffer
		h, err := NewLogHandler(LogConfig{Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
		if err != nil {
			t.Fatal(err)
		}
		m, _ := NewManager(ManagerConfig{Handlers: []Handler{h}})
		a := m.Fire(Alert{Severity: Critical, Message: "down", Type: Type{Message: "s", Metadata: map[string]string{"endpoint": "api"}}})
		m.Fire(Alert{Severity: Warning, Message: "slow"})
		m.Resolve(a.ID)
		if err := h.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := h.Close(context.Background()); err != nil {
			t.Fatalf("second Close: %v", err)
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
		if st := statsOf(h); st.Sent != 3 {
			t.Fatalf("stats %+v", st)
		}
	})
}

// A logger stuck on a blocked pipe cannot hold up Close past its deadline.
func TestLogHandlerCloseDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		h, _ := NewLogHandler(LogConfig{Logger: slog.New(slog.NewTextHandler(blockedWriter(release), nil))})
		h.HandleAlert(Alert{ID: "a"})
		h.HandleAlert(Alert{ID: "b"})
		synctest.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := h.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close = %v", err)
		}
		close(release)
		synctest.Wait()
		if st := statsOf(h); st.Sent != 1 || st.Dropped != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
}

type blockedWriter chan struct{}

func (w blockedWriter) Write(p []byte) (int, error) { <-w; return len(p), nil }

// End to end over real HTTP: a breaker transition on the bus becomes an
// Alertmanager-style firing post and, on close, a resolved post for the
// same alert.
func TestBreakerAlertToWebhook(t *testing.T) {
	var mu sync.Mutex
	var posts []webhookPayload
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p webhookPayload
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil || r.Header.Get("Authorization") != "Bearer t" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		posts = append(posts, p)
		mu.Unlock()
	}))
	defer srv.Close()
	h, err := NewWebhookHandler(WebhookConfig{URL: srv.URL + "/hook", Header: http.Header{"Authorization": {"Bearer t"}}, Client: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	bus := events.NewBus()
	m, _ := NewManager(ManagerConfig{Bus: bus, Handlers: []Handler{h}})
	bus.Publish(change("api", events.Closed, events.Open, "Failure threshold exceeded", 0))
	bus.Publish(change("api", events.Open, events.HalfOpen, "", time.Second))
	bus.Publish(change("api", events.HalfOpen, events.Closed, "", 2*time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(posts) != 2 {
		t.Fatalf("%d posts, want 2", len(posts))
	}
	f, r := posts[0], posts[1]
	if f.Status != "firing" || r.Status != "resolved" || f.Alerts[0].Fingerprint != r.Alerts[0].Fingerprint ||
		f.Alerts[0].Labels["endpoint"] != "api" || f.Alerts[0].Labels["severity"] != "critical" ||
		f.Alerts[0].Annotations["reason"] != "Failure threshold exceeded" || !r.Alerts[0].EndsAt.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("posts:\n%+v\n%+v", f, r)
	}
}

// A dead endpoint (connection refused) over real sockets: retried, then
// given up on, and the error never shows the URL's secret path.
func TestWebhookDeadEndpoint(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/hook/SECRET"
	srv.Close()
	h, err := NewWebhookHandler(WebhookConfig{URL: url, Delivery: DeliveryConfig{MaxAttempts: 2, BaseBackoff: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	h.HandleAlert(Alert{ID: "a"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if st := statsOf(h); st.Failed != 1 || st.Retried != 1 {
		t.Fatalf("stats %+v", st)
	}
	if err := postJSON(ctx, http.DefaultClient, url, nil, []byte("{}")); err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("post error %v: want one without the URL", err)
	}
}

// A handler with nothing left to send closes cleanly even when ctx has
// already ended.
func TestHandlerCloseIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rx := &receiver{}
		h := webhook(t, rx, DeliveryConfig{})
		h.HandleAlert(Alert{ID: "a"})
		synctest.Wait() // sent
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := h.Close(ctx); err != nil {
			t.Fatalf("Close of an idle handler = %v", err)
		}
		if st := statsOf(h); st.Sent != 1 || st.Dropped != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
}
