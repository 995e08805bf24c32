package alert

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/bulwark-go/bulwark/internal/check"
)

// WebhookConfig configures the Sender NewWebhookHandler makes.
type WebhookConfig struct {
	// URL receives a POST per alert. Required: an absolute http or https
	// URL. Errors never print its path or query.
	URL string
	// Header is added to every request (an Authorization header, say).
	Header http.Header
	// Client sends the requests. Default: a new http.Client; each attempt
	// is bounded by Delivery.Timeout.
	Client *http.Client
	// Receiver is the payload's "receiver" field. Default "bulwark".
	Receiver string
	// Delivery sets queueing, timeout and retry.
	Delivery DeliveryConfig
}

// webhookPayload is the JSON body NewWebhookHandler's Sender posts, in the shape of
// Prometheus Alertmanager's webhook so that existing receivers understand
// it. It holds a single alert.
type webhookPayload struct {
	Version           string            `json:"version"` // "4"
	GroupKey          string            `json:"groupKey"`
	Status            string            `json:"status"` // "firing" or "resolved"
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []webhookAlert    `json:"alerts"`
}

// webhookAlert is one alert in a webhookPayload.
type webhookAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// newWebhookPayload returns the payload NewWebhookHandler's Sender sends for a.
func newWebhookPayload(receiver string, a Alert) webhookPayload {
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
	return webhookPayload{
		Version:           "4",
		GroupKey:          a.ID,
		Status:            status,
		Receiver:          receiver,
		GroupLabels:       map[string]string{"alertname": name},
		CommonLabels:      maps.Clone(labels),
		CommonAnnotations: maps.Clone(ann),
		Alerts: []webhookAlert{{
			Status:      status,
			Labels:      labels,
			Annotations: ann,
			StartsAt:    a.Timestamp.UTC(),
			EndsAt:      ends,
			Fingerprint: a.ID,
		}},
	}
}

// NewWebhookHandler returns a Sender that posts every alert as JSON to a
// URL, or the *core.ConfigError of every bad field of cfg joined. The body
// has the shape of Prometheus Alertmanager's webhook (version "4"),
// holding one alert: status "firing" or "resolved"; labels alertname (the
// MetaAlertName metadata, else "BulwarkAlert"), severity (lower case) and
// endpoint when the alert has one; annotations summary (Type.Message),
// description (Message) and the other metadata; startsAt, endsAt (the zero
// time while firing) and fingerprint (the alert's ID, also the groupKey).
func NewWebhookHandler(cfg WebhookConfig) (*Sender, error) {
	c := check.New("alert.WebhookConfig.", configError)
	checkURL(c, "URL", cfg.URL)
	cfg.Delivery.check(c.Sub("Delivery"))
	if err := c.Err(); err != nil {
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
		body, err := json.Marshal(newWebhookPayload(receiver, a))
		if err != nil {
			return &permanentError{err}
		}
		return postJSON(ctx, client, cfg.URL, header, body)
	}
	return &Sender{newQueue("alert.WebhookHandler", cfg.Delivery, send, client.CloseIdleConnections)}, nil
}
