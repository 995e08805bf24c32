package health

import (
	"context"
	"crypto/tls"
	"errors"
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
)

// GRPCProbe calls the standard gRPC health service,
// grpc.health.v1.Health/Check. It passes only on SERVING: NOT_SERVING,
// UNKNOWN, SERVICE_UNKNOWN, an Unimplemented health service and any
// transport error fail.
//
// Each check opens its own connection and closes it, so it tests that a
// connection can be made now, not that an old one still works.
type GRPCProbe struct {
	name     string
	target   string
	service  string
	dialOpts []grpc.DialOption
	timeout  time.Duration
}

// NewGRPCProbe returns a probe of target. The target is "host:port", a
// gRPC target such as "dns:///host:port", or a URL: "http://host:port" and
// "grpc://host:port" connect in plain text, "https://host:port" and
// "grpcs://host:port" over TLS. Plain text is the default; WithTLS turns TLS
// on for any form. Options: WithTimeout, WithName, WithService, WithTLS,
// WithDialOptions.
func NewGRPCProbe(target string, opts ...Option) (*GRPCProbe, error) {
	o, err := buildOptions(kindGRPC, opts)
	if err != nil {
		return nil, err
	}
	dialTarget, secure, err := parseGRPCTarget(target)
	if err != nil {
		return nil, err
	}
	tlsCfg := o.tls
	if secure && tlsCfg == nil {
		tlsCfg = &tls.Config{}
	}
	var creds credentials.TransportCredentials = insecure.NewCredentials()
	scheme := "grpc"
	if tlsCfg != nil {
		creds = credentials.NewTLS(tlsCfg.Clone())
		scheme = "grpcs"
	}
	p := &GRPCProbe{
		name:     o.name,
		target:   dialTarget,
		service:  o.service,
		dialOpts: append([]grpc.DialOption{grpc.WithTransportCredentials(creds)}, o.dialOpts...),
		timeout:  o.timeout,
	}
	if p.name == "" {
		p.name = scheme + "://" + dialTarget
		if p.service != "" {
			p.name += "/" + p.service
		}
	}
	return p, nil
}

func parseGRPCTarget(target string) (dial string, secure bool, err error) {
	if target == "" {
		return "", false, errors.New("health: gRPC probe target is empty")
	}
	scheme, rest, found := strings.Cut(target, "://")
	if found {
		switch strings.ToLower(scheme) {
		case "http", "grpc":
		case "https", "grpcs":
			secure = true
		default:
			return target, false, nil // a gRPC resolver scheme such as dns:///
		}
		rest = strings.TrimSuffix(rest, "/")
		if strings.ContainsAny(rest, "/?#") {
			return "", false, fmt.Errorf("health: gRPC probe target %q: want scheme://host:port without a path", target)
		}
		target = rest
	}
	if strings.HasPrefix(target, "unix:") || strings.Contains(target, ":///") {
		return target, secure, nil
	}
	if _, port, err := net.SplitHostPort(target); err != nil || port == "" {
		return "", false, fmt.Errorf("health: gRPC probe target %q: want host:port", target)
	}
	return target, secure, nil
}

// Name returns "grpc://host:port" ("grpcs://…" over TLS, with "/service"
// when WithService is given) or the name given WithName.
func (p *GRPCProbe) Name() string { return p.name }

// Check makes one health call.
func (p *GRPCProbe) Check(ctx context.Context) Result {
	return run(ctx, p.name, p.timeout, func(ctx context.Context) error {
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
	})
}
