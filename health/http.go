package health

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// HTTPProbe checks an HTTP or HTTPS URL: it passes when the response status
// is in the accepted range (200 to 399 unless WithStatusRange says
// otherwise). The body is read up to 64 KiB and discarded, so the
// connection can be reused.
type HTTPProbe struct {
	name    string
	url     string
	method  string
	header  http.Header
	client  *http.Client
	lo, hi  int
	timeout time.Duration
}

// NewHTTPProbe returns a probe of rawURL, which must be an absolute http or
// https URL. Options: WithTimeout, WithName, WithHTTPClient, WithMethod,
// WithHeader, WithStatusRange.
func NewHTTPProbe(rawURL string, opts ...Option) (*HTTPProbe, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("health: HTTP probe URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("health: HTTP probe URL %q: want an absolute http or https URL", rawURL)
	}
	o, err := buildOptions(kindHTTP, opts)
	if err != nil {
		return nil, err
	}
	p := &HTTPProbe{
		name: o.name, url: rawURL, method: o.method, header: o.header,
		client: o.client, lo: o.statusLo, hi: o.statusHi, timeout: o.timeout,
	}
	if p.name == "" {
		p.name = u.Redacted()
	}
	if p.client == nil {
		p.client = http.DefaultClient
	}
	return p, nil
}

// Name returns the URL (password redacted) or the name given WithName.
func (p *HTTPProbe) Name() string { return p.name }

// Check sends one request.
func (p *HTTPProbe) Check(ctx context.Context) Result {
	return run(ctx, p.name, p.timeout, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, p.method, p.url, nil)
		if err != nil {
			return err
		}
		for k, vs := range p.header {
			req.Header[k] = append([]string(nil), vs...)
		}
		if req.Header.Get("User-Agent") == "" {
			req.Header.Set("User-Agent", "bulwark-health/1")
		}
		resp, err := p.client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		if resp.StatusCode < p.lo || resp.StatusCode > p.hi {
			return fmt.Errorf("status %s, want %d-%d", resp.Status, p.lo, p.hi)
		}
		return nil
	})
}
