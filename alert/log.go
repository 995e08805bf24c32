package alert

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/bulwark-go/bulwark/internal/check"
)

// LogConfig configures a LogHandler. The zero value is valid.
type LogConfig struct {
	// Logger receives the records. Default slog.Default().
	Logger *slog.Logger
	// QueueSize bounds the alerts waiting to be logged; an alert that does
	// not fit is dropped and counted. Default 256; 1 to 65,536.
	QueueSize int
}

// LogHandler writes every alert to a slog.Logger, asynchronously, so that a
// logger writing to a blocked pipe cannot stall the Manager. A fired alert
// logs at a level that follows its severity (Info, Warn, Error); a resolved
// one logs at Info.
type LogHandler struct{ q *queue }

// NewLogHandler starts the handler's goroutine, or returns the
// *core.ConfigError of every bad field of cfg joined. Close stops it.
func NewLogHandler(cfg LogConfig) (*LogHandler, error) {
	c := check.New("alert.LogConfig.", configError)
	c.Int("QueueSize", &cfg.QueueSize, 256, 1, 1<<16)
	if err := c.Err(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	send := func(ctx context.Context, a Alert) error {
		logAlert(ctx, logger, a)
		return nil
	}
	d := DeliveryConfig{QueueSize: cfg.QueueSize, Timeout: 10 * time.Second, MaxAttempts: 1} // logging does not fail: no retry
	return &LogHandler{newQueue("alert.LogHandler", d, send, nil)}, nil
}

func logAlert(ctx context.Context, logger *slog.Logger, a Alert) {
	level, msg := slog.LevelInfo, "alert fired"
	switch {
	case a.Resolved:
		msg = "alert resolved"
	case a.Severity == Critical:
		level = slog.LevelError
	case a.Severity == Warning:
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("id", a.ID),
		slog.String("severity", a.Severity.String()),
		slog.String("summary", a.Type.Message),
		slog.String("message", a.Message),
		slog.Time("timestamp", a.Timestamp),
	}
	if a.ResolvedAt != nil {
		attrs = append(attrs, slog.Time("resolved_at", *a.ResolvedAt))
	}
	if len(a.Type.Metadata) > 0 {
		keys := make([]string, 0, len(a.Type.Metadata))
		for k := range a.Type.Metadata {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		meta := make([]any, 0, len(keys))
		for _, k := range keys {
			meta = append(meta, slog.String(k, a.Type.Metadata[k]))
		}
		attrs = append(attrs, slog.Group("metadata", meta...))
	}
	logger.LogAttrs(ctx, level, msg, attrs...)
}

// HandleAlert queues a for logging. It never blocks: when the queue is full
// or the handler is closed the alert is dropped and counted.
func (h *LogHandler) HandleAlert(a Alert) { h.q.enqueue(a) }

// Stats returns the handler's counters.
func (h *LogHandler) Stats() HandlerStats { return h.q.stats() }

// Close stops accepting alerts and logs what is queued, returning when that
// is done or ctx ends (then with an error wrapping ctx.Err(); what is left
// is dropped). Calling Close again returns nil at once.
func (h *LogHandler) Close(ctx context.Context) error { return h.q.close(ctx) }
