package health

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/coder/websocket"
)

// WebSocketProbe opens a WebSocket connection (a real upgrade whose
// Sec-WebSocket-Accept answer is verified), sends a ping and waits for the
// pong, then closes with a normal closure handshake. Any step failing fails
// the check.
type WebSocketProbe struct {
	name    string
	url     string
	header  http.Header
	client  *http.Client
	timeout time.Duration
}

// NewWebSocketProbe returns a probe of rawURL, a ws, wss, http or https
// URL. Options: WithTimeout, WithName, WithHTTPClient, WithHeader, WithTLS.
//
// With the default client, the connection is closed when the check's
// timeout passes whatever step it is in. A client given WithHTTPClient can't
// be bound that way: a server that answers the upgrade wrongly and then
// stalls can hold such a check up to 3 seconds past its timeout (the
// WebSocket library's own bound on reading the bad answer).
func NewWebSocketProbe(rawURL string, opts ...Option) (*WebSocketProbe, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("health: WebSocket probe URL: %w", err)
	}
	switch u.Scheme {
	case "ws", "wss", "http", "https":
	default:
		return nil, fmt.Errorf("health: WebSocket probe URL %q: want a ws, wss, http or https URL", rawURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("health: WebSocket probe URL %q: missing host", rawURL)
	}
	o, err := buildOptions(kindWebSocket, opts)
	if err != nil {
		return nil, err
	}
	if o.client != nil && o.tls != nil {
		return nil, errors.New("health: WebSocket probe: give WithTLS or WithHTTPClient, not both (set the TLS config on your client's transport)")
	}
	p := &WebSocketProbe{name: o.name, url: rawURL, header: o.header, client: o.client, timeout: o.timeout}
	if p.client == nil {
		p.client = checkBoundClient(o.tls)
	}
	if p.name == "" {
		p.name = u.Redacted()
	}
	return p, nil
}

// Name returns the URL (password redacted) or the name given WithName.
func (p *WebSocketProbe) Name() string { return p.name }

// Check connects, pings and closes once.
func (p *WebSocketProbe) Check(ctx context.Context) Result {
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
