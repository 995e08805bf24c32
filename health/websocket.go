package health

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/coder/websocket"

	"github.com/bulwark-go/bulwark/health/internal/probeconf"
)

// WebSocketProbeConfig describes a probe that opens a WebSocket connection
// (a real upgrade whose Sec-WebSocket-Accept answer is verified), sends a
// ping and waits for the pong, then closes with a normal closure
// handshake. Any step failing fails the check.
type WebSocketProbeConfig struct {
	// URL is the ws, wss, http or https URL to connect to. Required.
	URL string
	// Header is sent with the upgrade request.
	Header http.Header
	// TLS configures wss and https connections. Default nil: the system
	// roots.
	TLS *tls.Config
	// Timeout bounds each check, whatever step it is in. Default 5s; 1ms
	// to 1h.
	Timeout time.Duration
	// Name names the probe in results and reasons. Default the URL with
	// its password redacted.
	Name string
}

type webSocketProbe struct {
	name    string
	url     string
	header  http.Header
	client  *http.Client
	timeout time.Duration
}

// NewWebSocketProbe returns a probe that connects, pings and closes once
// per check, on a fresh connection each time.
func NewWebSocketProbe(cfg WebSocketProbeConfig) (Probe, error) {
	c := probeconf.New("health.WebSocketProbeConfig.")
	u, err := url.Parse(cfg.URL)
	if err != nil {
		c.Fail("URL", fmt.Sprintf("%q", cfg.URL), err.Error())
	} else {
		switch u.Scheme {
		case "ws", "wss", "http", "https":
			if u.Host == "" {
				c.Fail("URL", fmt.Sprintf("%q", cfg.URL), "must name a host")
			}
		default:
			c.Fail("URL", fmt.Sprintf("%q", cfg.URL), "must be a ws, wss, http or https URL")
		}
	}
	probeconf.Timeout(c, &cfg.Timeout)
	if err := c.Err(); err != nil {
		return nil, err
	}
	p := &webSocketProbe{name: cfg.Name, url: cfg.URL, header: cfg.Header.Clone(), client: checkBoundClient(cfg.TLS), timeout: cfg.Timeout}
	if p.name == "" {
		p.name = u.Redacted()
	}
	return p, nil
}

func (p *webSocketProbe) Name() string { return p.name }

func (p *webSocketProbe) Check(ctx context.Context) Result {
	return run(ctx, p.name, p.timeout, func(ctx context.Context) error {
		ctx = context.WithValue(ctx, checkCtxKey{}, ctx)
		c, resp, err := websocket.Dial(ctx, p.url, &websocket.DialOptions{HTTPClient: p.client, HTTPHeader: p.header})
		if err != nil {
			if resp != nil {
				return fmt.Errorf("upgrade: %s: %w", resp.Status, err)
			}
			return fmt.Errorf("upgrade: %w", err)
		}
		defer c.CloseNow()
		// Ping needs a reader to receive the pong; CloseRead is one that
		// also answers the server's close frame.
		c.CloseRead(ctx)
		if err := c.Ping(ctx); err != nil {
			return fmt.Errorf("ping: %w", err)
		}
		if err := c.Close(websocket.StatusNormalClosure, "health check"); err != nil {
			return fmt.Errorf("close: %w", err)
		}
		return nil
	})
}

// checkCtxKey carries a check's context to the dialer of checkBoundClient.
type checkCtxKey struct{}

// checkBoundClient returns a client whose connections close when the check
// that opened them ends: http.Transport dials with a context detached from
// the request's cancellation, and a hijacked connection outlives the
// request, so neither would otherwise stop at the probe's timeout. It keeps
// no idle connections, so a probe leaves nothing running between checks.
func checkBoundClient(tlsCfg *tls.Config) *http.Client {
	var d net.Dialer
	tr := &http.Transport{
		Proxy:             http.ProxyFromEnvironment,
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			if check, ok := ctx.Value(checkCtxKey{}).(context.Context); ok {
				context.AfterFunc(check, func() { _ = conn.Close() })
			}
			return conn, nil
		},
	}
	if tlsCfg != nil {
		tr.TLSClientConfig = tlsCfg.Clone()
	}
	return &http.Client{Transport: tr}
}
