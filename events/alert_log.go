package events

import (
	"context"
	"errors"
	"log/slog"
	"slices"
)

// LogConfig configures a LogHandler.
type LogConfig struct {
	// Logger receives the records. Required.
	Logger *slog.Logger
	// Delivery sets queueing. Retries don't apply: logging doesn't fail.
	Delivery DeliveryConfig
}

// LogHandler writes every alert to a slog.Logger, asynchronously, so that a
// logger writing to a blocked pipe can't stall the AlertManager. A fired
// alert logs at a level that follows its severity (Info, Warn, Error); a
// resolved one logs at Info.
type LogHandler struct{ q *queue }

// NewLogHandler validates cfg and starts the handler's goroutine. Close
// stops it.
func NewLogHandler(cfg LogConfig) (*LogHandler, error) {
	if cfg.Logger == nil {
		return nil, errors.New("events: LogConfig.Logger is nil")
	}
	d, err := cfg.Delivery.withDefaults("LogConfig")
	if err != nil {
		return nil, err
	}
	d.MaxAttempts = 1
	logger := cfg.Logger
	send := func(ctx context.Context, a Alert) error {
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
		return nil
	}
	return &LogHandler{newQueue(d, send, nil)}, nil
}

// HandleAlert queues a for logging. It never blocks: when the queue is full
// or the handler is closed the alert is dropped and counted.
func (h *LogHandler) HandleAlert(a Alert) { h.q.enqueue(a) }

// Stats returns the handler's counters.
func (h *LogHandler) Stats() HandlerStats { return h.q.stats() }

// Close stops accepting alerts and logs what is queued for up to
// Delivery.DrainTimeout.
func (h *LogHandler) Close() error { return h.q.close() }

// Shutdown is Close with the drain deadline given by ctx.
func (h *LogHandler) Shutdown(ctx context.Context) error { return h.q.shutdown(ctx) }
