package health

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"
)

// TCPProbe checks that a TCP connection can be opened, and with WithTLS
// that a TLS handshake completes over it. The connection is closed at once.
type TCPProbe struct {
	name    string
	addr    string
	host    string
	tls     *tls.Config
	timeout time.Duration
}

// NewTCPProbe returns a probe of address, a "host:port" pair (build one
// from separate parts with net.JoinHostPort). Options: WithTimeout,
// WithName, WithTLS.
func NewTCPProbe(address string, opts ...Option) (*TCPProbe, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("health: TCP probe address %q: %w", address, err)
	}
	if port == "" {
		return nil, fmt.Errorf("health: TCP probe address %q: missing port", address)
	}
	o, err := buildOptions(kindTCP, opts)
	if err != nil {
		return nil, err
	}
	p := &TCPProbe{name: o.name, addr: address, host: host, tls: o.tls, timeout: o.timeout}
	if p.name == "" {
		scheme := "tcp"
		if p.tls != nil {
			scheme = "tls"
		}
		p.name = scheme + "://" + address
	}
	return p, nil
}

// Name returns "tcp://host:port" ("tls://…" with WithTLS) or the name given
// WithName.
func (p *TCPProbe) Name() string { return p.name }

// Check connects once.
func (p *TCPProbe) Check(ctx context.Context) Result {
	return run(ctx, p.name, p.timeout, func(ctx context.Context) error {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", p.addr)
		if err != nil {
			return err
		}
		defer conn.Close()
		if p.tls == nil {
			return nil
		}
		cfg := p.tls.Clone()
		if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
			cfg.ServerName = p.host
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("tls handshake: %w", err)
		}
		return tc.Close()
	})
}
