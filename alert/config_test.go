package alert

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
)

// configFields returns the Field of every *core.ConfigError in err.
func configFields(t *testing.T, err error) []string {
	t.Helper()
	var out []string
	var walk func(error)
	walk = func(e error) {
		if joined, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range joined.Unwrap() {
				walk(x)
			}
			return
		}
		var ce *core.ConfigError
		if !errors.As(e, &ce) {
			t.Errorf("%v is not a *core.ConfigError", e)
			return
		}
		out = append(out, ce.Field)
	}
	walk(err)
	slices.Sort(out)
	return out
}

func TestConfigErrors(t *testing.T) {
	bad := DeliveryConfig{QueueSize: -1, Timeout: -1, MaxAttempts: 101, BaseBackoff: 2 * time.Hour, MaxBackoff: -1, MaxRetryAfter: 25 * time.Hour}
	badFields := func(prefix string) []string {
		var out []string
		for _, f := range []string{"BaseBackoff", "MaxAttempts", "MaxBackoff", "MaxRetryAfter", "QueueSize", "Timeout"} {
			out = append(out, prefix+"Delivery."+f)
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		new    func() (any, error)
		fields []string
	}{
		{"manager ranges", func() (any, error) {
			return NewManager(ManagerConfig{Bus: events.NewBus(), History: -1, MaxActive: 1 << 21, EventBuffer: 1 << 17})
		}, []string{"alert.ManagerConfig.EventBuffer", "alert.ManagerConfig.History", "alert.ManagerConfig.MaxActive"}},
		{"manager without a bus", func() (any, error) {
			return NewManager(ManagerConfig{ClusterAlerts: true, EventBuffer: 10, History: 1 << 17})
		}, []string{"alert.ManagerConfig.ClusterAlerts", "alert.ManagerConfig.EventBuffer", "alert.ManagerConfig.History"}},
		{"manager nil dependencies", func() (any, error) {
			return NewManager(ManagerConfig{Handlers: []Handler{&collector{}, nil, (*Sender)(nil), HandlerFunc(nil)}, Clock: (*core.FakeClock)(nil)})
		}, []string{"alert.ManagerConfig.Clock", "alert.ManagerConfig.Handlers[1]", "alert.ManagerConfig.Handlers[2]", "alert.ManagerConfig.Handlers[3]"}},
		{"log", func() (any, error) { return NewLogHandler(LogConfig{QueueSize: 1 << 17}) },
			[]string{"alert.LogConfig.QueueSize"}},
		{"webhook", func() (any, error) { return NewWebhookHandler(WebhookConfig{URL: "ftp://x/y", Delivery: bad}) },
			append([]string{"alert.WebhookConfig.URL"}, badFields("alert.WebhookConfig.")...)},
		{"webhook without a URL", func() (any, error) { return NewWebhookHandler(WebhookConfig{}) },
			[]string{"alert.WebhookConfig.URL"}},
		{"webhook relative URL", func() (any, error) { return NewWebhookHandler(WebhookConfig{URL: "/relative"}) },
			[]string{"alert.WebhookConfig.URL"}},
		{"webhook URL without a host", func() (any, error) { return NewWebhookHandler(WebhookConfig{URL: "http://"}) },
			[]string{"alert.WebhookConfig.URL"}},
		{"webhook backoff cap below base", func() (any, error) {
			return NewWebhookHandler(WebhookConfig{URL: "https://x.example", Delivery: DeliveryConfig{BaseBackoff: time.Minute, MaxBackoff: time.Second}})
		}, []string{"alert.WebhookConfig.Delivery.MaxBackoff"}},
		{"slack", func() (any, error) {
			return NewSlackHandler(SlackConfig{WebhookURL: "gopher://hooks.slack.com/services/T000/B000/SECRET", Delivery: bad})
		}, append([]string{"alert.SlackConfig.WebhookURL"}, badFields("alert.SlackConfig.")...)},
		{"slack without a URL", func() (any, error) { return NewSlackHandler(SlackConfig{}) },
			[]string{"alert.SlackConfig.WebhookURL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := tc.new()
			if err == nil {
				t.Fatalf("accepted: %+v", v)
			}
			if !errors.Is(err, core.ErrInvalidConfig) {
				t.Errorf("%v does not match core.ErrInvalidConfig", err)
			}
			var ce *core.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("%v: no *core.ConfigError", err)
			}
			want := slices.Clone(tc.fields)
			slices.Sort(want)
			if got := configFields(t, err); !slices.Equal(got, want) {
				t.Fatalf("fields %v\nwant   %v\n(%v)", got, want, err)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Fatalf("the URL's secret leaked: %v", err)
			}
		})
	}
}

// The zero value of every config is valid, and so is a delay long enough
// to need a longer cap by default.
func TestConfigDefaults(t *testing.T) {
	m, err := NewManager(ManagerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.ring) != 100 || m.maxActive != 10_000 {
		t.Fatalf("defaults: history %d, max active %d", len(m.ring), m.maxActive)
	}
	l, err := NewLogHandler(LogConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(t.Context())
	d := DeliveryConfig{BaseBackoff: time.Minute}
	h, err := NewWebhookHandler(WebhookConfig{URL: "https://x.example/hook", Delivery: d})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(t.Context())
	if c := h.q.cfg; c.QueueSize != 256 || c.Timeout != 10*time.Second || c.MaxAttempts != 5 || c.MaxBackoff != time.Minute || c.MaxRetryAfter != time.Minute {
		t.Fatalf("delivery defaults %+v", c)
	}
}
