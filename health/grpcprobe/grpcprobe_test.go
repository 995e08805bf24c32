package grpcprobe_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/bulwark-go/bulwark/health"
	"github.com/bulwark-go/bulwark/health/grpcprobe"
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
)

func mk(t *testing.T, cfg grpcprobe.Config) health.Probe {
	t.Helper()
	p, err := grpcprobe.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// grpcServer runs the standard health service until the test ends.
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

func TestProbe(t *testing.T) {
	addr, hs := grpcServer(t)
	hs.SetServingStatus("orders", healthpb.HealthCheckResponse_SERVING)

	p := mk(t, grpcprobe.Config{Target: addr})
	if p.Name() != "grpc://"+addr {
		t.Fatalf("name %q", p.Name())
	}
	mustPass(t, p)
	mustPass(t, mk(t, grpcprobe.Config{Target: "http://" + addr}))
	mustPass(t, mk(t, grpcprobe.Config{Target: "grpc://" + addr + "/"}))
	mustPass(t, mk(t, grpcprobe.Config{Target: "dns:///" + addr}))
	svc := mk(t, grpcprobe.Config{Target: addr, Service: "orders"})
	if svc.Name() != "grpc://"+addr+"/orders" {
		t.Fatalf("name %q", svc.Name())
	}
	mustPass(t, svc)

	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	mustFail(t, p, "health status NOT_SERVING")
	hs.SetServingStatus("orders", healthpb.HealthCheckResponse_NOT_SERVING)
	mustFail(t, svc, "health status NOT_SERVING")
	hs.SetServingStatus("orders", healthpb.HealthCheckResponse_SERVING)
	mustPass(t, svc)
	mustFail(t, mk(t, grpcprobe.Config{Target: addr, Service: "nope"}), "NotFound")
}

func TestProbeDeadAndHung(t *testing.T) {
	mustFail(t, mk(t, grpcprobe.Config{Target: probetest.DeadAddr(t), Timeout: 2 * time.Second}), "Unavailable")
	hung := probetest.HungServer(t)
	mustFail(t, mk(t, grpcprobe.Config{Target: hung, Timeout: 100 * time.Millisecond}), "deadline exceeded")
}

func TestProbeUnimplemented(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer() // no health service registered
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(ln) }()
	defer func() { s.Stop(); <-done }()
	mustFail(t, mk(t, grpcprobe.Config{Target: ln.Addr().String()}), "does not implement grpc.health.v1.Health")
}

func TestProbeTLS(t *testing.T) {
	// Borrow httptest's certificate for a TLS gRPC server.
	cert := httptest.NewUnstartedServer(nil)
	cert.StartTLS()
	cfg := cert.TLS
	roots := x509.NewCertPool()
	roots.AddCert(cert.Certificate())
	cert.Close()

	addr, hs := grpcServer(t, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: cfg.Certificates})))
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	p := mk(t, grpcprobe.Config{Target: addr, TLS: &tls.Config{RootCAs: roots}})
	if p.Name() != "grpcs://"+addr {
		t.Fatalf("name %q", p.Name())
	}
	mustPass(t, p)
	mustPass(t, mk(t, grpcprobe.Config{Target: "grpcs://" + addr, TLS: &tls.Config{RootCAs: roots}}))
	// grpcs:// alone means TLS with the system roots, which don't trust
	// the test certificate.
	mustFail(t, mk(t, grpcprobe.Config{Target: "grpcs://" + addr, Timeout: 2 * time.Second}), "certificate")
	// Plain text against a TLS server fails.
	mustFail(t, mk(t, grpcprobe.Config{Target: addr, Timeout: 2 * time.Second}), "")
}

// DialOptions reach the connection: grpc.WithUserAgent shows on the
// server.
func TestProbeDialOptions(t *testing.T) {
	got := make(chan string, 1)
	addr, _ := grpcServer(t, grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		if ua := md.Get("user-agent"); len(ua) > 0 {
			select {
			case got <- ua[0]:
			default:
			}
		}
		return h(ctx, req)
	}))
	mustPass(t, mk(t, grpcprobe.Config{Target: addr, DialOptions: []grpc.DialOption{grpc.WithUserAgent("bulwark-test")}}))
	if ua := <-got; !strings.HasPrefix(ua, "bulwark-test") {
		t.Fatalf("user-agent %q", ua)
	}
}

// Every bad field of a Config is reported as a *core.ConfigError.
func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  grpcprobe.Config
		want []string
	}{
		{"empty", grpcprobe.Config{}, []string{"grpcprobe.Config.Target"}},
		{"path", grpcprobe.Config{Target: "http://h:1/x"}, []string{"grpcprobe.Config.Target"}},
		{"no port", grpcprobe.Config{Target: "host"}, []string{"grpcprobe.Config.Target"}},
		{"every field", grpcprobe.Config{Target: "host", DialOptions: []grpc.DialOption{grpc.WithUserAgent("x"), nil}, Timeout: -1}, []string{
			"grpcprobe.Config.Target", "grpcprobe.Config.DialOptions[1]", "grpcprobe.Config.Timeout",
		}},
		{"timeout too long", grpcprobe.Config{Target: "h:1", Timeout: 2 * time.Hour}, []string{"grpcprobe.Config.Timeout"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := grpcprobe.New(tc.cfg)
			probetest.ConfigFields(t, err, tc.want...)
		})
	}
	if _, err := grpcprobe.New(grpcprobe.Config{Target: "unix:///tmp/x.sock", Timeout: time.Hour}); err != nil {
		t.Errorf("valid config refused: %v", err)
	}
}
