package alert

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark/internal/backoff"
	"github.com/bulwark-go/bulwark/internal/check"
)

// DeliveryConfig says how the webhook and Slack handlers send. Each handler
// has its own bounded queue and one goroutine that sends the alerts in
// order; HandleAlert only enqueues, so a slow or dead destination never
// blocks the Manager. The zero value is valid.
type DeliveryConfig struct {
	// QueueSize bounds the alerts waiting to be sent; an alert that does
	// not fit is dropped and counted. Default 256; 1 to 65,536.
	QueueSize int
	// Timeout bounds each attempt. Default 10s; 1ms to 1h.
	Timeout time.Duration
	// MaxAttempts is how many times one alert is tried, the first included
	// (1 means no retry). Default 5; 1 to 100.
	MaxAttempts int
	// BaseBackoff is the wait before the first retry; it doubles on each
	// later retry up to MaxBackoff, and each wait is spread by ±20% so
	// that senders that failed together do not retry together. Default
	// 500ms; 1ms to 1h.
	BaseBackoff time.Duration
	// MaxBackoff caps the wait between retries, before the spread. Default
	// 30s, or BaseBackoff when that is longer; BaseBackoff to 1h.
	MaxBackoff time.Duration
	// MaxRetryAfter caps the wait a server asks for with Retry-After (on a
	// 429 or 5xx), so that a server cannot stall the queue for an hour.
	// Default 1m; 1ms to 24h.
	MaxRetryAfter time.Duration
}

// check fills in the defaults and reports every bad field under c.
func (d *DeliveryConfig) check(c *check.Checker) {
	c.Int("QueueSize", &d.QueueSize, 256, 1, 1<<16)
	c.Duration("Timeout", &d.Timeout, 10*time.Second, time.Millisecond, time.Hour)
	c.Int("MaxAttempts", &d.MaxAttempts, 5, 1, 100)
	c.Duration("BaseBackoff", &d.BaseBackoff, 500*time.Millisecond, time.Millisecond, time.Hour)
	baseOK := d.BaseBackoff >= time.Millisecond && d.BaseBackoff <= time.Hour
	maxDefault := 30 * time.Second
	if baseOK {
		maxDefault = max(maxDefault, d.BaseBackoff)
	}
	if d.MaxBackoff != 0 && baseOK && d.MaxBackoff < d.BaseBackoff {
		c.Fail("MaxBackoff", d.MaxBackoff, fmt.Sprintf("must not be below BaseBackoff (%v)", d.BaseBackoff))
	} else {
		c.Duration("MaxBackoff", &d.MaxBackoff, maxDefault, time.Millisecond, time.Hour)
	}
	c.Duration("MaxRetryAfter", &d.MaxRetryAfter, time.Minute, time.Millisecond, 24*time.Hour)
}

// permanentError marks a send failure that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// retryAfterError carries the wait a server asked for.
type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// queue is the bounded queue and sending goroutine behind every handler.
type queue struct {
	name   string // for errors: "alert.WebhookHandler"
	cfg    DeliveryConfig
	policy backoff.Policy
	send   func(ctx context.Context, a Alert) error
	onDone func()

	mu     sync.RWMutex // guards closed against a send on ch
	closed bool
	ch     chan Alert

	ctx    context.Context // cancelled when Close's deadline passes
	cancel context.CancelFunc
	done   chan struct{}

	// Alerts delivered; given up on after trying (attempts exhausted, a
	// permanent error, or cut off by Close's deadline); never tried (the
	// queue was full or closed, or they were still queued when Close's
	// deadline passed); and retry attempts.
	sent, failed, dropped, retried atomic.Uint64
	owed                           atomic.Int64 // queued or being sent
}

func newQueue(name string, cfg DeliveryConfig, send func(context.Context, Alert) error, onDone func()) *queue {
	ctx, cancel := context.WithCancel(context.Background())
	q := &queue{
		name: name, cfg: cfg, send: send, onDone: onDone,
		policy: backoff.Policy{Initial: cfg.BaseBackoff, Max: cfg.MaxBackoff, Multiplier: 2, Jitter: 0.2},
		ch:     make(chan Alert, cfg.QueueSize),
		ctx:    ctx, cancel: cancel,
		done: make(chan struct{}),
	}
	go q.run()
	return q
}

// enqueue never blocks.
func (q *queue) enqueue(a Alert) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		q.dropped.Add(1)
		return
	}
	q.owed.Add(1)
	select {
	case q.ch <- a:
	default:
		q.owed.Add(-1)
		q.dropped.Add(1)
	}
}

// close stops accepting alerts and waits until what is queued is sent or
// ctx ends; then it abandons the rest, which the goroutine counts on its
// way out.
func (q *queue) close(ctx context.Context) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	close(q.ch)
	q.mu.Unlock()
	select {
	case <-q.done:
		q.cancel()
		return nil
	case <-ctx.Done():
		q.cancel()
		if left := q.owed.Load(); left > 0 {
			return fmt.Errorf("%s.Close: %d alerts not delivered: %w", q.name, left, ctx.Err())
		}
		return nil // nothing was left: the goroutine is on its way out
	}
}

func (q *queue) run() {
	defer close(q.done)
	if q.onDone != nil {
		defer q.onDone()
	}
	for a := range q.ch {
		if q.ctx.Err() != nil {
			q.dropped.Add(1)
		} else {
			q.deliver(a)
		}
		q.owed.Add(-1)
	}
}

// deliver tries one alert until it is sent, fails for good, or the queue is
// abandoned.
func (q *queue) deliver(a Alert) {
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(q.ctx, q.cfg.Timeout)
		err := q.send(ctx, a)
		cancel()
		if err == nil {
			q.sent.Add(1)
			return
		}
		var perm *permanentError
		if errors.As(err, &perm) || attempt >= q.cfg.MaxAttempts || q.ctx.Err() != nil {
			q.failed.Add(1)
			return
		}
		wait := q.policy.Random(attempt - 1)
		var ra *retryAfterError
		if errors.As(err, &ra) {
			wait = min(ra.after, q.cfg.MaxRetryAfter)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-q.ctx.Done():
			t.Stop()
			q.failed.Add(1)
			return
		}
		q.retried.Add(1)
	}
}

// Sender delivers alerts to one destination (the log, a webhook, Slack)
// from a bounded queue of its own, on one goroutine, with the retries its
// DeliveryConfig allows: a slow or dead destination never blocks the
// Manager or the other destinations. NewLogHandler, NewWebhookHandler and
// NewSlackHandler make one.
type Sender struct{ q *queue }

// HandleAlert queues a for sending; when the queue is full it is dropped
// and counted.
func (s *Sender) HandleAlert(a Alert) { s.q.enqueue(a) }

// Close sends what is queued, within ctx, and stops the sender's
// goroutine. Alerts still queued when ctx ends are counted as dropped and
// the error wraps ctx.Err(). A second Close returns nil.
func (s *Sender) Close(ctx context.Context) error { return s.q.close(ctx) }
