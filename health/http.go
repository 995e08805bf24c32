package health

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/bulwark-go/bulwark/health/internal/probeconf"
)

// HTTPProbeConfig describes a probe of an HTTP or HTTPS URL. It passes when
// the response status is between MinStatus and MaxStatus.
type HTTPProbeConfig struct {
	// URL is the absolute http or https URL to request. Required.
	URL string
	// Method is the request method. Default GET.
	Method string
	// Header is sent with every request (a User-Agent of its own
	// replaces "bulwark-health/1").
	Header http.Header
	// MinStatus is the lowest status that passes. Default 200; 100 to 599,
	// at most MaxStatus.
	MinStatus int
	// MaxStatus is the highest status that passes. Default 399; 100 to
	// 599, at least MinStatus.
	MaxStatus int
	// Client sends the requests. Default http.DefaultClient, which follows
	// redirects: a 3xx passes only when the client returns it.
	Client *http.Client
	// Timeout bounds each check. Default 5s; 1ms to 1h.
	Timeout time.Duration
	// Name names the probe in results and reasons. Default the URL with
	// its password redacted.
	Name string
}

// httpProbe reads the body up to 64 KiB and discards it, so the
// connection can be reused.
type httpProbe struct {
	name    string
	url     string
	method  string
	header  http.Header
	client  *http.Client
	lo, hi  int
	timeout time.Duration
}

// NewHTTPProbe returns a probe that sends one request per check.
func NewHTTPProbe(cfg HTTPProbeConfig) (Probe, error) {
	c := probeconf.New("health.HTTPProbeConfig.")
	u, err := url.Parse(cfg.URL)
	switch {
	case err != nil:
		c.Fail("URL", fmt.Sprintf("%q", cfg.URL), err.Error())
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		c.Fail("URL", fmt.Sprintf("%q", cfg.URL), "must be an absolute http or https URL")
	}
	if cfg.Method == "" {
		cfg.Method = http.MethodGet
	} else if !validMethod(cfg.Method) {
		c.Fail("Method", fmt.Sprintf("%q", cfg.Method), "must be an HTTP method token")
	}
	c.Int("MinStatus", &cfg.MinStatus, 200, 100, 599)
	c.Int("MaxStatus", &cfg.MaxStatus, 399, 100, 599)
	if cfg.MinStatus > cfg.MaxStatus {
		c.Fail("MinStatus", cfg.MinStatus, fmt.Sprintf("must be at most MaxStatus (%d)", cfg.MaxStatus))
	}
	probeconf.Timeout(c, &cfg.Timeout)
	if err := c.Err(); err != nil {
		return nil, err
	}
	p := &httpProbe{
		name: cfg.Name, url: cfg.URL, method: cfg.Method, header: cfg.Header.Clone(),
		client: cfg.Client, lo: cfg.MinStatus, hi: cfg.MaxStatus, timeout: cfg.Timeout,
	}
	if p.name == "" {
		p.name = u.Redacted()
	}
	if p.client == nil {
		p.client = http.DefaultClient
	}
	return p, nil
}

// validMethod reports whether m is an RFC 9110 token, as net/http wants.
func validMethod(m string) bool {
	return strings.IndexFunc(m, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r))
	}) < 0
}

func (p *httpProbe) Name() string { return p.name }

func (p *httpProbe) Check(ctx context.Context) Result {
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
