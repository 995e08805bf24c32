package events

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const userAgent = "bulwark-alerts/1"

// checkURL accepts absolute http and https URLs only.
func checkURL(field, raw string) error {
	if raw == "" {
		return fmt.Errorf("events: %s is empty: want an http or https URL", field)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("events: %s: %w", field, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("events: %s = %q: want an absolute http or https URL", field, redactURL(u))
	}
	return nil
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
func postJSON(ctx context.Context, client *http.Client, target string, header http.Header, body []byte, now func() time.Time) error {
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
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), now()); ok {
			return &retryAfterError{err: err, after: d}
		}
		return err
	}
	return &permanentError{err}
}

// parseRetryAfter reads a Retry-After value in seconds or as an HTTP-date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		if n > int64(24*time.Hour/time.Second) {
			n = int64(24 * time.Hour / time.Second) // no overflow; capped later anyway
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}
