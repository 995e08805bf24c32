package health

import (
	"bufio"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// core.SystemClock's coarse ticker outlives its last read by about a
		// second.
		goleak.IgnoreTopFunction("github.com/bulwark-go/bulwark/core.(*sysClock).tick"),
	)
}

// hungServer accepts connections and never answers; Close frees them.
type hungServer struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	done  chan struct{}
}

func newHungServer(t *testing.T) *hungServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hungServer{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.conns = append(h.conns, c)
			h.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-h.done
		h.mu.Lock()
		for _, c := range h.conns {
			c.Close()
		}
		h.mu.Unlock()
	})
	return h
}

func (h *hungServer) addr() string { return h.ln.Addr().String() }

// deadAddr returns an address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func mustPass(t *testing.T, p Probe) Result {
	t.Helper()
	r := p.Check(context.Background())
	if !r.OK || r.Err != nil {
		t.Fatalf("%s: check failed: %v", p.Name(), r.Err)
	}
	if r.Probe != p.Name() || r.Time.IsZero() || r.Latency <= 0 {
		t.Fatalf("%s: incomplete result %+v", p.Name(), r)
	}
	return r
}

func mustFail(t *testing.T, p Probe, contains string) Result {
	t.Helper()
	r := p.Check(context.Background())
	if r.OK || r.Err == nil {
		t.Fatalf("%s: check passed, want a failure containing %q", p.Name(), contains)
	}
	if !strings.Contains(r.Err.Error(), contains) {
		t.Fatalf("%s: error %q, want it to contain %q", p.Name(), r.Err, contains)
	}
	return r
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

	p, err := NewHTTPProbe(srv.URL+"/ok", WithHTTPClient(client))
	if err != nil {
		t.Fatal(err)
	}
	mustPass(t, p)
	p, _ = NewHTTPProbe(srv.URL+"/moved", WithHTTPClient(client))
	mustPass(t, p)
	p, _ = NewHTTPProbe(srv.URL+"/moved", WithHTTPClient(client), WithStatusRange(200, 299))
	mustFail(t, p, "302 Found, want 200-299")
	p, _ = NewHTTPProbe(srv.URL+"/down", WithHTTPClient(client))
	mustFail(t, p, "503")
	p, _ = NewHTTPProbe(srv.URL+"/down", WithHTTPClient(client), WithStatusRange(503, 503))
	mustPass(t, p)
	p, _ = NewHTTPProbe(srv.URL+"/auth", WithHTTPClient(client))
	mustFail(t, p, "401")
	p, _ = NewHTTPProbe(srv.URL+"/auth", WithHTTPClient(client), WithMethod(http.MethodHead), WithHeader("Authorization", "Bearer t"))
	mustPass(t, p)

	p, _ = NewHTTPProbe("http://" + deadAddr(t) + "/health")
	mustFail(t, p, "refused")

	hung := newHungServer(t)
	p, _ = NewHTTPProbe("http://"+hung.addr()+"/health", WithTimeout(100*time.Millisecond))
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

func TestHTTPSProbe(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	p, _ := NewHTTPProbe(srv.URL, WithHTTPClient(srv.Client()), WithName("api-https"))
	if r := mustPass(t, p); r.Probe != "api-https" {
		t.Fatalf("probe name %q", r.Probe)
	}
	// Without the test CA the certificate is not trusted.
	p, _ = NewHTTPProbe(srv.URL, WithHTTPClient(&http.Client{}))
	mustFail(t, p, "certificate")
}

func TestProbeConstructionErrors(t *testing.T) {
	for name, mk := range map[string]func() error{
		"http scheme":        func() error { _, err := NewHTTPProbe("ftp://x/"); return err },
		"http relative":      func() error { _, err := NewHTTPProbe("/health"); return err },
		"http bad range":     func() error { _, err := NewHTTPProbe("http://x/", WithStatusRange(400, 200)); return err },
		"http nil client":    func() error { _, err := NewHTTPProbe("http://x/", WithHTTPClient(nil)); return err },
		"http tls option":    func() error { _, err := NewHTTPProbe("http://x/", WithTLS(nil)); return err },
		"zero timeout":       func() error { _, err := NewHTTPProbe("http://x/", WithTimeout(0)); return err },
		"tcp no port":        func() error { _, err := NewTCPProbe("localhost"); return err },
		"tcp method":         func() error { _, err := NewTCPProbe("localhost:1", WithMethod("GET")); return err },
		"grpc empty":         func() error { _, err := NewGRPCProbe(""); return err },
		"grpc path":          func() error { _, err := NewGRPCProbe("http://h:1/x"); return err },
		"grpc no port":       func() error { _, err := NewGRPCProbe("host"); return err },
		"grpc header option": func() error { _, err := NewGRPCProbe("h:1", WithHeader("a", "b")); return err },
		"ws scheme":          func() error { _, err := NewWebSocketProbe("tcp://h:1"); return err },
		"ws service option":  func() error { _, err := NewWebSocketProbe("ws://h:1", WithService("x")); return err },
		"custom nil":         func() error { _, err := NewCustomProbe("db", nil); return err },
		"custom no name":     func() error { _, err := NewCustomProbe("", CheckerFunc(nil)); return err },
		"custom empty name":  func() error { _, err := NewCustomProbe("db", okChecker, WithName("")); return err },
	} {
		if err := mk(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	_, err := NewTCPProbe("h:1", WithStatusRange(200, 299))
	if err == nil || !strings.Contains(err.Error(), "WithStatusRange does not apply to a TCP probe") {
		t.Errorf("option error %v", err)
	}
}

var okChecker = CheckerFunc(func(context.Context) error { return nil })

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
	p, _ := NewTCPProbe(ln.Addr().String())
	if p.Name() != "tcp://"+ln.Addr().String() {
		t.Fatalf("name %q", p.Name())
	}
	mustPass(t, p)
	ln.Close()
	<-accepted
	p, _ = NewTCPProbe(deadAddr(t))
	mustFail(t, p, "refused")
}

func TestTCPProbeTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	addr := srv.Listener.Addr().String()

	p, _ := NewTCPProbe(addr, WithTLS(&tls.Config{RootCAs: roots}))
	if !strings.HasPrefix(p.Name(), "tls://") {
		t.Fatalf("name %q", p.Name())
	}
	mustPass(t, p)
	p, _ = NewTCPProbe(addr, WithTLS(nil)) // system roots: untrusted
	mustFail(t, p, "tls handshake")

	// A plain TCP server that never speaks TLS: the handshake times out.
	hung := newHungServer(t)
	p, _ = NewTCPProbe(hung.addr(), WithTLS(&tls.Config{RootCAs: roots}), WithTimeout(100*time.Millisecond))
	mustFail(t, p, "deadline")
}

// grpcServer runs the standard health service.
func grpcServer(t *testing.T, opts ...grpc.ServerOption) (addr string, hs *grpchealth.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(opts...)
	hs = grpchealth.NewServer()
	healthpb.RegisterHealthServer(s, hs)
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(ln) }()
	t.Cleanup(func() { s.Stop(); <-done })
	return ln.Addr().String(), hs
}

func TestGRPCProbe(t *testing.T) {
	addr, hs := grpcServer(t)
	hs.SetServingStatus("orders", healthpb.HealthCheckResponse_SERVING)

	p, err := NewGRPCProbe(addr)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name() != "grpc://"+addr {
		t.Fatalf("name %q", p.Name())
	}
	mustPass(t, p)
	seedForm, _ := NewGRPCProbe("http://" + addr) // the seed's endpoint form
	mustPass(t, seedForm)
	svc, _ := NewGRPCProbe(addr, WithService("orders"))
	mustPass(t, svc)

	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	mustFail(t, p, "NOT_SERVING")
	hs.SetServingStatus("orders", healthpb.HealthCheckResponse_NOT_SERVING)
	mustFail(t, svc, "NOT_SERVING")
	hs.SetServingStatus("orders", healthpb.HealthCheckResponse_SERVING)
	mustPass(t, svc)
	unknown, _ := NewGRPCProbe(addr, WithService("nope"))
	mustFail(t, unknown, "NotFound")

	dead, _ := NewGRPCProbe(deadAddr(t), WithTimeout(2*time.Second))
	mustFail(t, dead, "Unavailable")

	hung := newHungServer(t)
	slow, _ := NewGRPCProbe(hung.addr(), WithTimeout(100*time.Millisecond))
	mustFail(t, slow, "DeadlineExceeded")
}

func TestGRPCProbeUnimplemented(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer() // no health service registered
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(ln) }()
	defer func() { s.Stop(); <-done }()
	p, _ := NewGRPCProbe(ln.Addr().String())
	mustFail(t, p, "does not implement grpc.health.v1.Health")
}

func TestGRPCProbeTLS(t *testing.T) {
	// Borrow httptest's certificate for a TLS gRPC server.
	cert := httptest.NewUnstartedServer(nil)
	cert.StartTLS()
	cfg := cert.TLS
	roots := x509.NewCertPool()
	roots.AddCert(cert.Certificate())
	cert.Close()

	addr, hs := grpcServer(t, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: cfg.Certificates})))
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	p, _ := NewGRPCProbe("grpcs://"+addr, WithTLS(&tls.Config{RootCAs: roots}))
	if !strings.HasPrefix(p.Name(), "grpcs://") {
		t.Fatalf("name %q", p.Name())
	}
	mustPass(t, p)
	plain, _ := NewGRPCProbe(addr, WithTimeout(2*time.Second))
	mustFail(t, plain, "")
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
	u := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
	p, err := NewWebSocketProbe(u)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name() != u {
		t.Fatalf("name %q", p.Name())
	}
	mustPass(t, p)
	mustPass(t, p) // again, on a fresh connection

	// An ordinary HTTP endpoint refuses the upgrade.
	plain := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer plain.Close()
	p, _ = NewWebSocketProbe(plain.URL)
	mustFail(t, p, "upgrade")

	dead, _ := NewWebSocketProbe("ws://" + deadAddr(t) + "/ws")
	mustFail(t, dead, "refused")

	hung := newHungServer(t)
	slow, _ := NewWebSocketProbe("ws://"+hung.addr()+"/ws", WithTimeout(100*time.Millisecond))
	mustFail(t, slow, "deadline")
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
	p, _ := NewWebSocketProbe(srv.URL, WithTimeout(200*time.Millisecond))
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
	p, _ := NewWebSocketProbe(u, WithTLS(&tls.Config{RootCAs: roots}))
	mustPass(t, p)
	p, _ = NewWebSocketProbe(u, WithHTTPClient(srv.Client()))
	mustPass(t, p)
	p, _ = NewWebSocketProbe(u)
	mustFail(t, p, "certificate")
	if _, err := NewWebSocketProbe(u, WithTLS(nil), WithHTTPClient(srv.Client())); err == nil {
		t.Fatal("WithTLS and WithHTTPClient together accepted")
	}
}

// A server that upgrades correctly but never answers a ping fails the check.
func TestWebSocketProbeNoPong(t *testing.T) {
	srv := fakeUpgrade(t, validAccept)
	p, _ := NewWebSocketProbe(srv.URL, WithTimeout(200*time.Millisecond))
	mustFail(t, p, "ping")
}

func TestCustomProbe(t *testing.T) {
	p, err := NewCustomProbe("db", okChecker)
	if err != nil {
		t.Fatal(err)
	}
	mustPass(t, p)
	p, _ = NewCustomProbe("db", CheckerFunc(func(context.Context) error { return errors.New("no connection") }))
	mustFail(t, p, "no connection")
	p, _ = NewCustomProbe("db", CheckerFunc(func(context.Context) error { panic("boom") }))
	mustFail(t, p, "checker panicked: boom")

	// A checker that ignores its context is still cut off by the timeout.
	release := make(chan struct{})
	finished := make(chan struct{})
	p, _ = NewCustomProbe("stuck", CheckerFunc(func(context.Context) error {
		defer close(finished)
		<-release
		return nil
	}), WithTimeout(50*time.Millisecond))
	mustFail(t, p, "deadline exceeded")
	close(release)
	<-finished
}

func TestResultJSON(t *testing.T) {
	at := time.Date(2025, 10, 8, 12, 0, 0, 0, time.UTC)
	r := Result{Probe: "tcp://db:5432", OK: false, Latency: 1500 * time.Microsecond, Err: errors.New("refused"), Time: at}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"probe":"tcp://db:5432","ok":false,"latency_ms":1.5,"error":"refused","time":"2025-10-08T12:00:00Z"}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	var back Result
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Probe != r.Probe || back.Latency != r.Latency || back.Err.Error() != "refused" || !back.Time.Equal(at) {
		t.Fatalf("round trip %+v", back)
	}
}
