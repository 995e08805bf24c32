package health

import (
	"context"
	"fmt"
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
// URL. Options: WithTimeout, WithName, WithHTTPClient, WithHeader.
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
	p := &WebSocketProbe{name: o.name, url: rawURL, header: o.header, client: o.client, timeout: o.timeout}
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
