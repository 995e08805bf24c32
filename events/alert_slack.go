package events

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"
)

// SlackConfig configures a SlackHandler.
type SlackConfig struct {
	// WebhookURL is the Slack incoming webhook
	// (https://hooks.slack.com/services/...). Required. Errors never print
	// its path, which holds the token.
	WebhookURL string
	// Client sends the requests. Default: a new http.Client.
	Client *http.Client
	// Delivery sets queueing, timeout and retry.
	Delivery DeliveryConfig
}

// SlackMessage is the JSON body a SlackHandler posts: a plain-text fallback
// for notifications plus Block Kit blocks.
type SlackMessage struct {
	Text   string       `json:"text"`
	Blocks []SlackBlock `json:"blocks"`
}

// SlackBlock is one Block Kit block (header, section or context).
type SlackBlock struct {
	Type     string       `json:"type"`
	Text     *SlackText   `json:"text,omitempty"`
	Fields   []*SlackText `json:"fields,omitempty"`
	Elements []*SlackText `json:"elements,omitempty"`
}

// SlackText is a Block Kit text object.
type SlackText struct {
	Type string `json:"type"` // "plain_text" or "mrkdwn"
	Text string `json:"text"`
}

// Slack's documented size limits.
const (
	slackHeaderMax  = 150
	slackSectionMax = 3000
	slackFieldMax   = 2000
	slackFieldsMax  = 10
)

// NewSlackMessage returns the message a SlackHandler sends for a.
func NewSlackMessage(a Alert) SlackMessage {
	icon, state := severityIcon(a.Severity), strings.ToUpper(a.Severity.String())
	if a.Resolved {
		icon, state = ":white_check_mark:", "RESOLVED"
	}
	title := a.Type.Message
	if title == "" {
		title = a.Message
	}
	text := fmt.Sprintf("%s [%s] %s", icon, state, a.Message)

	blocks := []SlackBlock{
		{Type: "header", Text: &SlackText{"plain_text", truncate(fmt.Sprintf("[%s] %s", state, title), slackHeaderMax)}},
		{Type: "section", Text: &SlackText{"mrkdwn", truncate(icon+" "+slackEscape(a.Message), slackSectionMax)}},
	}
	keys := make([]string, 0, len(a.Type.Metadata))
	for k := range a.Type.Metadata {
		if k != MetaAlertName {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if len(keys) > 0 {
		fields := make([]*SlackText, 0, min(len(keys), slackFieldsMax))
		for _, k := range keys[:min(len(keys), slackFieldsMax)] {
			fields = append(fields, &SlackText{"mrkdwn", truncate(fmt.Sprintf("*%s*\n%s", slackEscape(k), slackEscape(a.Type.Metadata[k])), slackFieldMax)})
		}
		blocks = append(blocks, SlackBlock{Type: "section", Fields: fields})
	}
	ctx := fmt.Sprintf("Severity %s · fired %s · id %s", a.Severity, a.Timestamp.UTC().Format("2006-01-02 15:04:05Z"), a.ID)
	if a.Resolved && a.ResolvedAt != nil {
		ctx += " · resolved " + a.ResolvedAt.UTC().Format("2006-01-02 15:04:05Z")
	}
	blocks = append(blocks, SlackBlock{Type: "context", Elements: []*SlackText{{"mrkdwn", ctx}}})
	return SlackMessage{Text: text, Blocks: blocks}
}

func severityIcon(s Severity) string {
	switch s {
	case Critical:
		return ":rotating_light:"
	case Warning:
		return ":warning:"
	}
	return ":information_source:"
}

// slackEscape escapes the three characters Slack's mrkdwn reserves.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// truncate cuts s to at most n runes, marking the cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// SlackHandler posts every alert to a Slack incoming webhook,
// asynchronously: see DeliveryConfig. Retries on 5xx, 429 (Slack's rate
// limit, with Retry-After) and transport errors; any other 4xx fails the
// alert at once.
type SlackHandler struct{ q *queue }

// NewSlackHandler validates cfg and starts the handler's sending goroutine.
// Close stops it.
func NewSlackHandler(cfg SlackConfig) (*SlackHandler, error) {
	if err := checkURL("SlackConfig.WebhookURL", cfg.WebhookURL); err != nil {
		return nil, err
	}
	d, err := cfg.Delivery.withDefaults("SlackConfig")
	if err != nil {
		return nil, err
	}
	client := cfg.Client
	if client == nil {
		client = &http.Client{}
	}
	send := func(ctx context.Context, a Alert) error {
		body, err := json.Marshal(NewSlackMessage(a))
		if err != nil {
			return &permanentError{err}
		}
		return postJSON(ctx, client, cfg.WebhookURL, nil, body, d.Now)
	}
	return &SlackHandler{newQueue(d, send, client.CloseIdleConnections)}, nil
}

// HandleAlert queues a for sending. It never blocks: when the queue is full
// or the handler is closed the alert is dropped and counted.
func (h *SlackHandler) HandleAlert(a Alert) { h.q.enqueue(a) }

// Stats returns the handler's counters.
func (h *SlackHandler) Stats() HandlerStats { return h.q.stats() }

// Close stops accepting alerts and sends what is queued for up to
// Delivery.DrainTimeout, then abandons the rest. It returns an error wrapping
// ErrHandlerClosed when alerts were left undelivered by the deadline. It
// also closes the client's idle connections.
func (h *SlackHandler) Close() error { return h.q.close() }

// Shutdown is Close with the drain deadline given by ctx.
func (h *SlackHandler) Shutdown(ctx context.Context) error { return h.q.shutdown(ctx) }
