package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/bulwark-go/bulwark/internal/check"
)

// SlackConfig configures the Sender NewSlackHandler makes.
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

// slackMessage is the JSON body NewSlackHandler's Sender posts: a plain-text fallback
// for notifications plus Block Kit blocks.
type slackMessage struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

// slackBlock is one Block Kit block (header, section or context).
type slackBlock struct {
	Type     string       `json:"type"`
	Text     *slackText   `json:"text,omitempty"`
	Fields   []*slackText `json:"fields,omitempty"`
	Elements []*slackText `json:"elements,omitempty"`
}

// slackText is a Block Kit text object.
type slackText struct {
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

// newSlackMessage returns the message NewSlackHandler's Sender sends for a.
func newSlackMessage(a Alert) slackMessage {
	icon, state := severityIcon(a.Severity), strings.ToUpper(a.Severity.String())
	if a.Resolved {
		icon, state = ":white_check_mark:", "RESOLVED"
	}
	title := a.Type.Message
	if title == "" {
		title = a.Message
	}
	text := fmt.Sprintf("%s [%s] %s", icon, state, a.Message)

	blocks := []slackBlock{
		{Type: "header", Text: &slackText{"plain_text", truncate(fmt.Sprintf("[%s] %s", state, title), slackHeaderMax)}},
		{Type: "section", Text: &slackText{"mrkdwn", truncate(icon+" "+slackEscape(a.Message), slackSectionMax)}},
	}
	keys := make([]string, 0, len(a.Type.Metadata))
	for k := range a.Type.Metadata {
		if k != MetaAlertName {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if len(keys) > 0 {
		fields := make([]*slackText, 0, min(len(keys), slackFieldsMax))
		for _, k := range keys[:min(len(keys), slackFieldsMax)] {
			fields = append(fields, &slackText{"mrkdwn", truncate(fmt.Sprintf("*%s*\n%s", slackEscape(k), slackEscape(a.Type.Metadata[k])), slackFieldMax)})
		}
		blocks = append(blocks, slackBlock{Type: "section", Fields: fields})
	}
	ctx := fmt.Sprintf("Severity %s · fired %s · id %s", a.Severity, a.Timestamp.UTC().Format("2006-01-02 15:04:05Z"), a.ID)
	if a.Resolved && a.ResolvedAt != nil {
		ctx += " · resolved " + a.ResolvedAt.UTC().Format("2006-01-02 15:04:05Z")
	}
	blocks = append(blocks, slackBlock{Type: "context", Elements: []*slackText{{"mrkdwn", ctx}}})
	return slackMessage{Text: text, Blocks: blocks}
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

// NewSlackHandler returns a Sender that posts every alert to a Slack
// incoming webhook (a message with a plain-text fallback and blocks), or
// the *core.ConfigError of every bad field of cfg joined.
func NewSlackHandler(cfg SlackConfig) (*Sender, error) {
	c := check.New("alert.SlackConfig.", configError)
	checkURL(c, "WebhookURL", cfg.WebhookURL)
	cfg.Delivery.check(c.Sub("Delivery"))
	if err := c.Err(); err != nil {
		return nil, err
	}
	client := cfg.Client
	if client == nil {
		client = &http.Client{}
	}
	send := func(ctx context.Context, a Alert) error {
		body, err := json.Marshal(newSlackMessage(a))
		if err != nil {
			return &permanentError{err}
		}
		return postJSON(ctx, client, cfg.WebhookURL, nil, body)
	}
	return &Sender{newQueue("alert.SlackHandler", cfg.Delivery, send, client.CloseIdleConnections)}, nil
}
