package health

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/bulwark-go/bulwark/health/internal/probeconf"
)

// TCPProbeConfig describes a probe that opens a TCP connection, and with
// TLS set completes a TLS handshake over it. The connection is closed at
// once.
type TCPProbeConfig struct {
	// Address is the "host:port" to connect to (net.JoinHostPort builds
	// one from separate parts). Required.
	Address string
	// TLS, when set, makes the probe complete a TLS handshake with this
	// configuration; &tls.Config{} means the defaults (system roots, server
	// name from Address). Default nil: a plain TCP connect.
	TLS *tls.Config
	// Timeout bounds each check. Default 5s; 1ms to 1h.
	Timeout time.Duration
	// Name names the probe in results and reasons. Default
	// "tcp://host:port", or "tls://host:port" with TLS.
	Name string
}

type tcpProbe struct {
	name    string
	addr    string
	tls     *tls.Config
	timeout time.Duration
}

// NewTCPProbe returns a probe that connects once per check.
func NewTCPProbe(cfg TCPProbeConfig) (Probe, error) {
	c := probeconf.New("health.TCPProbeConfig.")
	host, port, err := net.SplitHostPort(cfg.Address)
	switch {
	case err != nil:
		c.Fail("Address", fmt.Sprintf("%q", cfg.Address), "must be host:port")
	case port == "":
		c.Fail("Address", fmt.Sprintf("%q", cfg.Address), "must name a port")
	}
	probeconf.Timeout(c, &cfg.Timeout)
	if err := c.Err(); err != nil {
		return nil, err
	}
	p := &tcpProbe{name: cfg.Name, addr: cfg.Address, timeout: cfg.Timeout}
	if cfg.TLS != nil {
		p.tls = cfg.TLS.Clone()
		if p.tls.ServerName == "" && !p.tls.InsecureSkipVerify {
			p.tls.ServerName = host
		}
	}
	if p.name == "" {
		scheme := "tcp"
		if p.tls != nil {
			scheme = "tls"
		}
		p.name = scheme + "://" + cfg.Address
	}
	return p, nil
}

func (p *tcpProbe) Name() string { return p.name }

func (p *tcpProbe) Check(ctx context.Context) Result {
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
		tc := tls.Client(conn, p.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("tls handshake: %w", err)
		}
		return tc.Close()
	})
}
