package events

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"strings"
	"time"
)

// WebhookConfig configures a WebhookHandler.
type WebhookConfig struct {
	// URL receives a POST per alert. Required, http or https.
	URL string
	// Header is added to every request (an Authorization header, say).
	Header http.Header
	// Client sends the requests. Default: a new http.Client; its timeout is
	// left to Delivery.Timeout.
	Client *http.Client
	// Receiver is the payload's "receiver" field. Default "bulwark".
	Receiver string
	// Delivery sets queueing, timeout and retry.
	Delivery DeliveryConfig
}

// WebhookPayload is the JSON body a WebhookHandler posts, in the shape of
// Prometheus Alertmanager's webhook so that existing receivers understand
// it. It holds a single alert.
type WebhookPayload struct {
	Version           string            `json:"version"` // "4"
	GroupKey          string            `json:"groupKey"`
	Status            string            `json:"status"` // "firing" or "resolved"
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []WebhookAlert    `json:"alerts"`
}

// WebhookAlert is one alert in a WebhookPayload.
//
// Labels are alertname (the MetaAlertName metadata, else "BulwarkAlert"),
// severity (lower case) and endpoint when the alert has one; Annotations
// are summary (Type.Message), description (Message) and the other metadata.
// EndsAt is the zero time while firing, as in Alertmanager. Fingerprint is
// the alert's ID.
type WebhookAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// NewWebhookPayload returns the payload a WebhookHandler sends for a.
func NewWebhookPayload(receiver string, a Alert) WebhookPayload {
	status := "firing"
	var ends time.Time
	if a.Resolved {
		status = "resolved"
		if a.ResolvedAt != nil {
			ends = a.ResolvedAt.UTC()
		}
	}
	name := a.Type.Metadata[MetaAlertName]
	if name == "" {
		name = "BulwarkAlert"
	}
	labels := map[string]string{
		"alertname": name,
		"severity":  strings.ToLower(a.Severity.String()),
	}
	if ep := a.Type.Metadata[MetaEndpoint]; ep != "" {
		labels["endpoint"] = ep
	}
	ann := make(map[string]string, len(a.Type.Metadata)+2)
	for k, v := range a.Type.Metadata {
		if k != MetaAlertName && k != MetaEndpoint {
			ann[k] = v
		}
	}
	ann["summary"] = a.Type.Message
	ann["description"] = a.Message
	return WebhookPayload{
		Version:           "4",
		GroupKey:          a.ID,
		Status:            status,
		Receiver:          receiver,
		GroupLabels:       map[string]string{"alertname": name},
		CommonLabels:      maps.Clone(labels),
		CommonAnnotations: maps.Clone(ann),
		Alerts: []WebhookAlert{{
			Status:      status,
			Labels:      labels,
			Annotations: ann,
			StartsAt:    a.Timestamp.UTC(),
			EndsAt:      ends,
			Fingerprint: a.ID,
		}},
	}
}

// WebhookHandler posts every alert as JSON (a WebhookPayload) to a URL,
// asynchronously: see DeliveryConfig. Retries on 5xx, 429 and transport
// errors, honouring Retry-After; any other 4xx fails the alert at once.
type WebhookHandler struct{ q *queue }

// NewWebhookHandler validates cfg and starts the handler's sending
// goroutine. Close stops it.
func NewWebhookHandler(cfg WebhookConfig) (*WebhookHandler, error) {
	if err := checkURL("WebhookConfig.URL", cfg.URL); err != nil {
		return nil, err
	}
	d, err := cfg.Delivery.withDefaults("WebhookConfig")
	if err != nil {
		return nil, err
	}
	client := cfg.Client
	if client == nil {
		client = &http.Client{}
	}
	receiver := cfg.Receiver
	if receiver == "" {
		receiver = "bulwark"
	}
	header := cfg.Header.Clone()
	send := func(ctx context.Context, a Alert) error {
		body, err := json.Marshal(NewWebhookPayload(receiver, a))
		if err != nil {
			return &permanentError{err}
		}
		return postJSON(ctx, client, cfg.URL, header, body, d.Now)
	}
	return &WebhookHandler{newQueue(d, send, client.CloseIdleConnections)}, nil
}

// HandleAlert queues a for sending. It never blocks: when the queue is full
// or the handler is closed the alert is dropped and counted.
func (h *WebhookHandler) HandleAlert(a Alert) { h.q.enqueue(a) }

// Stats returns the handler's counters.
func (h *WebhookHandler) Stats() HandlerStats { return h.q.stats() }

// Close stops accepting alerts and sends what is queued for up to
// Delivery.DrainTimeout, then abandons the rest. It returns an error wrapping
// ErrHandlerClosed when alerts were left undelivered by the deadline. It
// also closes the client's idle connections.
func (h *WebhookHandler) Close() error { return h.q.close() }

// Shutdown is Close with the drain deadline given by ctx.
func (h *WebhookHandler) Shutdown(ctx context.Context) error { return h.q.shutdown(ctx) }
