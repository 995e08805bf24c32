package grpcprobe

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/bulwark-go/bulwark/health"
	"github.com/bulwark-go/bulwark/health/internal/probeconf"
)

// Config describes a probe of a gRPC server's standard health service.
type Config struct {
	// Target is the server: "host:port", a gRPC target such as
	// "dns:///host:port" or "unix:///path", or a URL: "http://host:port"
	// and "grpc://host:port" connect in plain text, "https://host:port"
	// and "grpcs://host:port" over TLS. Required.
	Target string
	// Service is the service name sent in the health request. Default "":
	// the server as a whole.
	Service string
	// TLS, when set, connects over TLS with this configuration, whatever
	// the form of Target. Default nil: plain text, except for https:// and
	// grpcs:// targets, which use TLS with the system roots.
	TLS *tls.Config
	// DialOptions are added after the transport credentials the probe
	// chooses (a credentials option given here wins).
	DialOptions []grpc.DialOption
	// Timeout bounds each check. Default 5s; 1ms to 1h.
	Timeout time.Duration
	// Name names the probe in results and reasons. Default
	// "grpc://host:port" ("grpcs://…" over TLS), with "/service" when
	// Service is set.
	Name string
}

// New returns a probe that calls grpc.health.v1.Health/Check once per
// check. It passes only on SERVING: NOT_SERVING, UNKNOWN,
// SERVICE_UNKNOWN, a server without the health service and any transport
// error fail.
//
// Each check opens its own connection and closes it, so it tests that a
// connection can be made now, not that an old one still works.
func New(cfg Config) (health.Probe, error) {
	c := probeconf.New("grpcprobe.Config.")
	target, secure, rule := parseTarget(cfg.Target)
	if rule != "" {
		c.Fail("Target", fmt.Sprintf("%q", cfg.Target), rule)
	}
	for i, o := range cfg.DialOptions {
		if o == nil {
			c.Fail(fmt.Sprintf("DialOptions[%d]", i), nil, "must not be nil")
		}
	}
	probeconf.Timeout(c, &cfg.Timeout)
	if c.Failed() {
		return nil, c.Err()
	}

	tlsCfg := cfg.TLS
	if secure && tlsCfg == nil {
		tlsCfg = &tls.Config{}
	}
	var creds credentials.TransportCredentials = insecure.NewCredentials()
	scheme := "grpc"
	if tlsCfg != nil {
		creds = credentials.NewTLS(tlsCfg.Clone())
		scheme = "grpcs"
	}
	p := &probe{
		target:   target,
		service:  cfg.Service,
		dialOpts: append([]grpc.DialOption{grpc.WithTransportCredentials(creds)}, cfg.DialOptions...),
	}
	// grpc.NewClient only parses and validates; it connects on first use.
	conn, err := grpc.NewClient(p.target, p.dialOpts...)
	if err != nil {
		c.Fail("Target", fmt.Sprintf("%q", cfg.Target), err.Error())
		return nil, c.Err()
	}
	_ = conn.Close()

	name := cfg.Name
	if name == "" {
		name = scheme + "://" + target
		if cfg.Service != "" {
			name += "/" + cfg.Service
		}
	}
	return health.NewCustomProbe(health.CustomProbeConfig{Name: name, Checker: health.CheckerFunc(p.check), Timeout: cfg.Timeout})
}

// parseTarget returns the target to dial and whether its URL form asks
// for TLS, or the rule it breaks.
func parseTarget(target string) (dial string, secure bool, rule string) {
	if target == "" {
		return "", false, "must not be empty"
	}
	scheme, rest, found := strings.Cut(target, "://")
	if found {
		switch strings.ToLower(scheme) {
		case "http", "grpc":
		case "https", "grpcs":
			secure = true
		default:
			return target, false, "" // a gRPC resolver scheme such as dns:///
		}
		rest = strings.TrimSuffix(rest, "/")
		if strings.ContainsAny(rest, "/?#") {
			return "", false, "must be scheme://host:port without a path"
		}
		target = rest
	}
	if strings.HasPrefix(target, "unix:") || strings.Contains(target, ":///") {
		return target, secure, ""
	}
	if _, port, err := net.SplitHostPort(target); err != nil || port == "" {
		return "", false, "must be host:port, a gRPC target or a URL"
	}
	return target, secure, ""
}

type probe struct {
	target   string
	service  string
	dialOpts []grpc.DialOption
}

func (p *probe) check(ctx context.Context) error {
	conn, err := grpc.NewClient(p.target, p.dialOpts...)
	if err != nil {
		return err
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: p.service})
	if err != nil {
		if status.Code(err) == codes.Unimplemented {
			return fmt.Errorf("server does not implement grpc.health.v1.Health: %w", err)
		}
		return err
	}
	if s := resp.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("health status %s", s)
	}
	return nil
}
