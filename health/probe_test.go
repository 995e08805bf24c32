package health_test

import (
	"bufio"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"github.com/bulwark-go/bulwark/health"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/bulwark-go/bulwark/health/internal/probetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// core.SystemClock's coarse ticker outlives its last read by about a
		// second.
		goleak.IgnoreTopFunction("github.com/bulwark-go/bulwark/core.(*sysClock).tick"),
	)
}

var (
	mustPass = probetest.MustPass
	mustFail = probetest.MustFail
	deadAddr = probetest.DeadAddr
)

// must returns p, failing the test if making it failed.
func must(t *testing.T) func(health.Probe, error) health.Probe {
	return func(p health.Probe, err error) health.Probe {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
}

func TestHTTPProbe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			_, _ = w.Write([]byte("fine"))
		case "/moved":
			w.WriteHeader(http.StatusFound) // no Location: the client returns it
		case "/auth":
			if r.Method != http.MethodHead || r.Header.Get("Authorization") != "Bearer t" {
				w.WriteHeader(http.StatusUnauthorized)
			}
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	client := srv.Client()
	mk := must(t)

	mustPass(t, mk(health.NewHTTPProbe(health.HTTPProbeConfig{URL: srv.URL + "/ok", Client: client})))
	mustPass(t, mk(health.NewHTTPProbe(health.HTTPProbeConfig{URL: srv.URL + "/moved", Client: client})))
	mustFail(t, mk(health.NewHTTPProbe(health.HTTPProbeConfig{URL: srv.URL + "/moved", Client: client, MaxStatus: 299})), "302 Found, want 200-299")
	mustFail(t, mk(health.NewHTTPProbe(health.HTTPProbeConfig{URL: srv.URL + "/down", Client: client})), "503")
	mustPass(t, mk(health.NewHTTPProbe(health.HTTPProbeConfig{URL: srv.URL + "/down", Client: client, MinStatus: 503, MaxStatus: 503})))
	mustFail(t, mk(health.NewHTTPProbe(health.HTTPProbeConfig{URL: srv.URL + "/auth", Client: client})), "401")
	mustPass(t, mk(health.NewHTTPProbe(health.HTTPProbeConfig{
		URL: srv.URL + "/auth", Client: client, Method: http.MethodHead,
		Header: http.Header{"Authorization": {"Bearer t"}},
	})))

	mustFail(t, mk(health.NewHTTPProbe(health.HTTPProbeConfig{URL: "http://" + deadAddr(t) + "/health"})), "refused")

	hung := probetest.HungServer(t)
	p := mk(health.NewHTTPProbe(health.HTTPProbeConfig{URL: "http://" + hung + "/health", Timeout: 100 * time.Millisecond}))
	r := mustFail(t, p, "deadline exceeded")
	if r.Latency < 100*time.Millisecond || r.Latency > 5*time.Second {
		t.Fatalf("latency %v of a check with a 100ms timeout", r.Latency)
	}

	// The caller's context bounds the check too.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if r := p.Check(ctx); r.OK || !errors.Is(r.Err, context.Canceled) {
		t.Fatalf("cancelled check: %+v", r)
	}
}

func TestHTTPProbeName(t *testing.T) {
	p := must(t)(health.NewHTTPProbe(health.HTTPProbeConfig{URL: "https://user:secret@api.example.com/health"}))
	if p.Name() != "https://user:xxxxx@api.example.com/health" {
		t.Fatalf("name %q", p.Name())
	}
}

// The config's Header is copied: changing it later changes nothing.
func TestHTTPProbeCopiesHeader(t *testing.T) {
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got <- r.Header.Get("X-Token") }))
	defer srv.Close()
	h := http.Header{"X-Token": {"a"}}
	p := must(t)(health.NewHTTPProbe(health.HTTPProbeConfig{URL: srv.URL, Header: h}))
	h.Set("X-Token", "b")
	mustPass(t, p)
	if v := <-got; v != "a" {
		t.Fatalf("header %q, want the one given at construction", v)
	}
}

func TestHTTPSProbe(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	p := must(t)(health.NewHTTPProbe(health.HTTPProbeConfig{URL: srv.URL, Client: srv.Client(), Name: "api-https"}))
	if r := mustPass(t, p); r.Probe != "api-https" {
		t.Fatalf("probe name %q", r.Probe)
	}
	// Without the test CA the certificate is not trusted.
	mustFail(t, must(t)(health.NewHTTPProbe(health.HTTPProbeConfig{URL: srv.URL, Client: &http.Client{}})), "certificate")
}

func TestTCPProbe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	p := must(t)(health.NewTCPProbe(health.TCPProbeConfig{Address: ln.Addr().String()}))
	if p.Name() != "tcp://"+ln.Addr().String() {
		t.Fatalf("name %q", p.Name())
	}
	mustPass(t, p)
	ln.Close()
	<-accepted
	mustFail(t, must(t)(health.NewTCPProbe(health.TCPProbeConfig{Address: deadAddr(t)})), "refused")
}

func TestTCPProbeTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	addr := srv.Listener.Addr().String()
	mk := must(t)

	p := mk(health.NewTCPProbe(health.TCPProbeConfig{Address: addr, TLS: &tls.Config{RootCAs: roots}}))
	if p.Name() != "tls://"+addr {
		t.Fatalf("name %q", p.Name())
	}
	mustPass(t, p)
	mustFail(t, mk(health.NewTCPProbe(health.TCPProbeConfig{Address: addr, TLS: &tls.Config{}})), "tls handshake") // system roots: untrusted

	// A plain TCP server that never speaks TLS: the handshake times out.
	hung := probetest.HungServer(t)
	mustFail(t, mk(health.NewTCPProbe(health.TCPProbeConfig{Address: hung, TLS: &tls.Config{RootCAs: roots}, Timeout: 100 * time.Millisecond})), "deadline")
}

func wsServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		// Answer pings and the close handshake until the client leaves.
		<-c.CloseRead(r.Context()).Done()
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestWebSocketProbe(t *testing.T) {
	srv := wsServer(t)
	mk := must(t)
	u := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
	p := mk(health.NewWebSocketProbe(health.WebSocketProbeConfig{URL: u}))
	if p.Name() != u {
		t.Fatalf("name %q", p.Name())
	}
	mustPass(t, p)
	mustPass(t, p) // again, on a fresh connection

	// An ordinary HTTP endpoint refuses the upgrade.
	plain := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer plain.Close()
	mustFail(t, mk(health.NewWebSocketProbe(health.WebSocketProbeConfig{URL: plain.URL})), "upgrade")

	mustFail(t, mk(health.NewWebSocketProbe(health.WebSocketProbeConfig{URL: "ws://" + deadAddr(t) + "/ws"})), "refused")

	hung := probetest.HungServer(t)
	mustFail(t, mk(health.NewWebSocketProbe(health.WebSocketProbeConfig{URL: "ws://" + hung + "/ws", Timeout: 100 * time.Millisecond})), "deadline")
}

// fakeUpgrade answers the handshake with 101 and the given accept value,
// then never reads again.
func fakeUpgrade(t *testing.T, accept func(key string) string) *httptest.Server {
	t.Helper()
	var wg sync.WaitGroup
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		wg.Add(1)
		defer wg.Done()
		defer conn.Close()
		writeUpgrade(rw, accept(r.Header.Get("Sec-WebSocket-Key")))
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() {
		close(release)
		wg.Wait()
		srv.Close()
	})
	return srv
}

func writeUpgrade(rw *bufio.ReadWriter, accept string) {
	_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept + "\r\n\r\n")
	_ = rw.Flush()
}

func validAccept(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

func TestWebSocketProbeBadAccept(t *testing.T) {
	srv := fakeUpgrade(t, func(string) string { return "bm90IHRoZSByaWdodCBrZXk=" })
	p := must(t)(health.NewWebSocketProbe(health.WebSocketProbeConfig{URL: srv.URL, Timeout: 200 * time.Millisecond}))
	r := mustFail(t, p, "Sec-WebSocket-Accept")
	if r.Latency > 2*time.Second {
		t.Fatalf("check took %v, past its 200ms timeout", r.Latency)
	}
}

func TestWebSocketProbeTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		<-c.CloseRead(r.Context()).Done()
	}))
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	u := "wss" + strings.TrimPrefix(srv.URL, "https")
	mustPass(t, must(t)(health.NewWebSocketProbe(health.WebSocketProbeConfig{URL: u, TLS: &tls.Config{RootCAs: roots}})))
	mustFail(t, must(t)(health.NewWebSocketProbe(health.WebSocketProbeConfig{URL: u})), "certificate")
}

// A server that upgrades correctly but never answers a ping fails the check.
func TestWebSocketProbeNoPong(t *testing.T) {
	srv := fakeUpgrade(t, validAccept)
	p := must(t)(health.NewWebSocketProbe(health.WebSocketProbeConfig{URL: srv.URL, Timeout: 200 * time.Millisecond}))
	mustFail(t, p, "ping")
}

var okChecker = health.CheckerFunc(func(context.Context) error { return nil })

func TestCustomProbe(t *testing.T) {
	mk := must(t)
	mustPass(t, mk(health.NewCustomProbe(health.CustomProbeConfig{Name: "db", Checker: okChecker})))
	mustFail(t, mk(health.NewCustomProbe(health.CustomProbeConfig{Name: "db", Checker: health.CheckerFunc(func(context.Context) error {
		return errors.New("no connection")
	})})), "no connection")
	mustFail(t, mk(health.NewCustomProbe(health.CustomProbeConfig{Name: "db", Checker: health.CheckerFunc(func(context.Context) error {
		panic("boom")
	})})), "checker panicked: boom")

	// A checker that ignores its context is still cut off by the timeout.
	release := make(chan struct{})
	finished := make(chan struct{})
	p := mk(health.NewCustomProbe(health.CustomProbeConfig{Name: "stuck", Timeout: 50 * time.Millisecond, Checker: health.CheckerFunc(func(context.Context) error {
		defer close(finished)
		<-release
		return nil
	})}))
	mustFail(t, p, "deadline exceeded")
	close(release)
	<-finished
}

func TestResultJSON(t *testing.T) {
	at := time.Date(2025, 10, 8, 12, 0, 0, 0, time.UTC)
	r := health.Result{Probe: "tcp://db:5432", OK: false, Latency: 1500 * time.Microsecond, Err: errors.New("refused"), Time: at}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"probe":"tcp://db:5432","ok":false,"latency_ms":1.5,"error":"refused","time":"2025-10-08T12:00:00Z"}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	var back health.Result
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Probe != r.Probe || back.Latency != r.Latency || back.Err.Error() != "refused" || !back.Time.Equal(at) {
		t.Fatalf("round trip %+v", back)
	}
	// A result not yet taken has no time.
	if b, _ := json.Marshal(health.Result{}); string(b) != `{"probe":"","ok":false,"latency_ms":0}` {
		t.Fatalf("zero result %s", b)
	}
}

func FuzzResultJSON(f *testing.F) {
	f.Add([]byte(`{"probe":"tcp://db:5432","ok":false,"latency_ms":1.5,"error":"refused","time":"2025-10-08T12:00:00Z"}`))
	f.Add([]byte(`{"probe":"p","ok":true,"latency_ms":-1e300}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r health.Result
		if err := json.Unmarshal(b, &r); err != nil {
			return
		}
		// What decodes encodes, and decodes again to the same result.
		out, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("%+v: %v", r, err)
		}
		var back health.Result
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		if back.Probe != r.Probe || back.OK != r.OK || !back.Time.Equal(r.Time) || (back.Err == nil) != (r.Err == nil) {
			t.Fatalf("round trip %+v -> %s -> %+v", r, out, back)
		}
	})
}
