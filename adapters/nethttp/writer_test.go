package nethttp

import (
	"bufio"
	"context"
	"github.com/bulwark-go/bulwark/events"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/internal/wait"
	"github.com/coder/websocket"
)

func guardedServer(t *testing.T, pattern string, h http.HandlerFunc) (*httptest.Server, *core.Manager) {
	t.Helper()
	m, err := core.NewManager(core.ManagerConfig{Defaults: core.EndpointConfig{
		Breaker:  &core.BreakerConfig{FailureThreshold: 1},
		Bulkhead: &core.BulkheadConfig{},
	}})
	if err != nil {
		t.Fatal(err)
	}
	mw, err := Middleware(Config{Manager: m})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(pattern, mw(h))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, m
}

func TestWebSocketUpgradeBehindMiddleware(t *testing.T) {
	srv, m := guardedServer(t, "GET /ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		typ, msg, err := c.Read(ctx)
		if err != nil {
			return
		}
		_ = c.Write(ctx, typ, append([]byte("echo: "), msg...))
		_, _, _ = c.Read(ctx) // until the client closes
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatalf("dial through the middleware: %v", err)
	}
	if err := c.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	_, msg, err := c.Read(ctx)
	if err != nil || string(msg) != "echo: hi" {
		t.Fatalf("%q %v", msg, err)
	}
	c.Close(websocket.StatusNormalClosure, "")
	e, _ := m.Lookup("GET /ws")
	b := e.Breaker()
	wait.For(t, 5*time.Second, "the upgraded request to finish", func() bool { return b.Snapshot().SuccessfulRequests == 1 })
	if b.State() != events.Closed {
		t.Fatalf("an upgraded connection counted as a failure: %+v", b.Snapshot())
	}
	wait.For(t, 5*time.Second, "the bulkhead slot to be released", func() bool { return e.Bulkhead().Stats().Active == 0 })
}

func TestServerSentEventsStreamBehindMiddleware(t *testing.T) {
	srv, m := guardedServer(t, "GET /events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w) // needs Unwrap or Flusher
		for i := range 3 {
			_, _ = io.WriteString(w, "data: "+string(rune('a'+i))+"\n\n")
			if err := rc.Flush(); err != nil {
				t.Errorf("flush: %v", err)
				return
			}
			if err := rc.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
				t.Errorf("ResponseController cannot reach the connection: %v", err)
				return
			}
		}
	})
	resp, err := http.Get(srv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	var got []string
	for sc.Scan() {
		if line := sc.Text(); line != "" {
			got = append(got, line)
		}
	}
	if strings.Join(got, ",") != "data: a,data: b,data: c" {
		t.Fatalf("stream %v", got)
	}
	e, _ := m.Lookup("GET /events")
	wait.For(t, 5*time.Second, "the stream to be recorded", func() bool { return e.Breaker().Snapshot().SuccessfulRequests == 1 })
}

func TestWriterPassesReadFromAndStatus(t *testing.T) {
	rec := httptest.NewRecorder()
	sw := &statusWriter{w: rec, clock: core.SystemClock()}
	if sw.Status() != 200 {
		t.Fatal("default status")
	}
	n, err := sw.ReadFrom(strings.NewReader("hello"))
	if n != 5 || err != nil || rec.Body.String() != "hello" {
		t.Fatalf("ReadFrom %d %v %q", n, err, rec.Body)
	}
	sw.WriteHeader(500) // too late: the first status stays
	if sw.Status() != 200 || sw.Unwrap() != rec {
		t.Fatalf("status %d", sw.Status())
	}
	if _, _, err := sw.Hijack(); err == nil {
		t.Fatal("a recorder cannot be hijacked")
	}

	sw = &statusWriter{w: discardWriter{http.Header{}}, clock: core.SystemClock()}
	sw.WriteHeader(http.StatusEarlyHints) // informational: not final
	sw.WriteHeader(http.StatusTeapot)
	if sw.Status() != http.StatusTeapot {
		t.Fatalf("status after 103: %d", sw.Status())
	}

	// Below, a writer that has neither ReadFrom nor Flush: ReadFrom copies,
	// Flush does nothing, and both count as a 200.
	var buf strings.Builder
	sw = &statusWriter{w: &plainWriter{h: http.Header{}, w: &buf}, clock: core.SystemClock()}
	if n, err := sw.ReadFrom(strings.NewReader("copied")); n != 6 || err != nil || buf.String() != "copied" {
		t.Fatalf("ReadFrom without ReaderFrom below: %d %v %q", n, err, buf.String())
	}
	sw = &statusWriter{w: &plainWriter{h: http.Header{}, w: &buf}, clock: core.SystemClock()}
	sw.Flush()
	if sw.Status() != 200 {
		t.Fatalf("status after Flush: %d", sw.Status())
	}
}

// plainWriter is a ResponseWriter with nothing but the three methods.
type plainWriter struct {
	h http.Header
	w io.Writer
}

func (p *plainWriter) Header() http.Header         { return p.h }
func (p *plainWriter) Write(b []byte) (int, error) { return p.w.Write(b) }
func (p *plainWriter) WriteHeader(int)             {}

type discardWriter struct{ h http.Header }

func (d discardWriter) Header() http.Header       { return d.h }
func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (discardWriter) WriteHeader(int)             {}
