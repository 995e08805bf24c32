package alert

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/bulwark-go/bulwark/internal/check"
)

// LogConfig configures the Sender NewLogHandler makes. The zero value is
// valid.
type LogConfig struct {
	// Logger receives the records. Default slog.Default().
	Logger *slog.Logger
	// QueueSize bounds the alerts waiting to be logged; an alert that does
	// not fit is dropped and counted. Default 256; 1 to 65,536.
	QueueSize int
}

// NewLogHandler returns a Sender that writes every alert to a logger (at
// Error for Critical, Warn for Warning, Info otherwise), or the
// *core.ConfigError of every bad field of cfg joined.
func NewLogHandler(cfg LogConfig) (*Sender, error) {
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
	return &Sender{newQueue("alert.LogHandler", d, send, nil)}, nil
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
