package alert

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/bulwark-go/bulwark/internal/check"
	"github.com/bulwark-go/bulwark/internal/retryafter"
)

const userAgent = "bulwark-alerts/1"

// checkURL accepts absolute http and https URLs only. The value reported
// keeps only the scheme and host: webhook secrets live in the path.
func checkURL(c *check.Checker, field, raw string) {
	if raw == "" {
		c.Fail(field, `""`, "required: an absolute http or https URL")
		return
	}
	u, err := url.Parse(raw)
	if err != nil {
		c.Fail(field, "(unparsable)", "must be an absolute http or https URL")
		return
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		c.Fail(field, redactURL(u), "must be an absolute http or https URL")
	}
}

// redactURL hides the path and query, where webhook secrets live (Slack's
// token is in the path).
func redactURL(u *url.URL) string {
	if u.Host == "" {
		return u.Scheme + ":..."
	}
	return u.Scheme + "://" + u.Host + "/..."
}

// postJSON sends body and classifies the answer: nil for 2xx, a
// retryAfterError or plain error for 429, 5xx and transport errors, a
// permanentError for everything else.
func postJSON(ctx context.Context, client *http.Client, target string, header http.Header, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return &permanentError{err}
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Content-Type", "application/json")
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", userAgent)
	}
	resp, err := client.Do(req)
	if err != nil {
		// Don't echo the URL: it may hold a secret.
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err
		}
		return fmt.Errorf("post alert: %w", err)
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	_ = resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	err = fmt.Errorf("post alert: %s: %s", resp.Status, strings.TrimSpace(string(snippet)))
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		if d, ok := retryafter.Parse(resp.Header.Get("Retry-After"), time.Now()); ok {
			return &retryAfterError{err: err, after: d}
		}
		return err
	}
	return &permanentError{err}
}
