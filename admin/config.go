package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path"
	"reflect"
	"strings"
	"time"

	"github.com/bulwark-go/bulwark/alert"
	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/health"
	"github.com/bulwark-go/bulwark/internal/check"
)

// Config configures a Handler. Only Manager is required; the zero value of
// every other field is its documented default.
type Config struct {
	// Manager holds the endpoints to report and control: their breakers,
	// bulkheads and SLO trackers, and the per-user bulkhead. Its Bus is
	// the source of the live feed. Required.
	Manager *core.Manager

	// Prefix is the path the handler is mounted at, such as "/admin", for
	// routers that pass the full path through (chi's Mount, say). Leave it
	// empty when the handler already sees paths relative to its mount
	// point, as behind http.StripPrefix. When set, it starts with "/" and
	// holds no "?" or "#".
	Prefix string

	// Token enables the routes that change things (POST …/breakers/…,
	// PUT and DELETE …/config/…, POST and DELETE …/faults…) and then also
	// guards status, events, faults and the feed, unless PublicRead is
	// set. Clients send it as
	// "Authorization: Bearer <token>"; browsers opening the feed send it
	// as a WebSocket subprotocol (see the package documentation). Empty,
	// the default, disables those routes: they answer 403. When set, 16 to
	// 1,024 bytes of printable ASCII without spaces.
	Token string
	// PublicRead serves status, events and the feed without the token even
	// when Token is set; changes still need it. Use it only when the mount
	// point is already protected or the data is not sensitive (the
	// per-user bulkhead's top users are named).
	PublicRead bool

	// Cluster, when set, carries control actions to every instance (a
	// shared-state store such as *store.RedisStore) instead of applying
	// them to the local breaker. A typed nil (a nil *store.RedisStore, say)
	// is an error.
	Cluster ClusterController
	// Health, when set, is the monitor whose checks the status shows.
	Health *health.Monitor
	// Alerts, when set, is the manager whose active alerts the status
	// shows.
	Alerts *alert.Manager
	// Settings, when set, shows each endpoint's settings in GET
	// …/status/{endpoint} and enables PUT and DELETE …/config/{endpoint}.
	// A typed nil is an error.
	Settings Settings

	// OriginPatterns lists the host patterns (path.Match syntax, as in
	// websocket.AcceptOptions) of other origins allowed to open the feed,
	// such as "*.example.com". The page's own host is always allowed;
	// requests without an Origin header (non-browser clients) are too.
	OriginPatterns []string
	// MaxSubscribers bounds the feed's WebSocket clients and Register
	// receivers together; past it the feed answers 503 and Register fails
	// with ErrTooManySubscribers. Default 64; 1 to 10,000.
	MaxSubscribers int
	// SubscriberBuffer is how many messages may wait for one subscriber.
	// A subscriber that falls this far behind is disconnected. Default 64;
	// 1 to 4,096.
	SubscriberBuffer int
	// EventHistory is how many recent feed messages GET …/events keeps.
	// Default 256; 1 to 10,000.
	EventHistory int
	// PingInterval is how often the feed pings an idle client to keep the
	// connection alive and detect dead peers. Default 30s; 1ms to 1h.
	PingInterval time.Duration
	// WriteTimeout bounds one feed write or ping. Default 10s; 1ms to 5m.
	WriteTimeout time.Duration
	// SnapshotInterval is how often the feed sends a fresh snapshot (the
	// counts behind the dashboard's rates and bars) to WebSocket clients.
	// Default 2s; 10ms to 1h.
	SnapshotInterval time.Duration

	// Logger receives changes made through the handler (an audit trail)
	// and feed disconnects. Nil means slog.Default().
	Logger *slog.Logger
}

// ClusterController applies control actions to every instance sharing an
// endpoint's state; *store.RedisStore implements it. The reason of a
// reset or disable goes to the audit log only, as the breaker records none.
type ClusterController interface {
	ForceOpen(ctx context.Context, endpoint, reason string) error
	Reset(ctx context.Context, endpoint string) error
	Disable(ctx context.Context, endpoint string) error
}

// Settings shows and changes endpoints' settings at runtime; *bulwark.Kit
// implements it.
type Settings interface {
	// EndpointSettings returns the endpoint's settings in effect, as the
	// configuration file's section for it would give them (JSON), and
	// where they came from: "default", "file" or "runtime".
	EndpointSettings(endpoint string) (settings json.RawMessage, source string)
	// Reconfigure changes the endpoint's settings with patch, a JSON object
	// shaped like the file's section for an endpoint; only the keys it
	// gives change.
	Reconfigure(ctx context.Context, endpoint string, patch []byte) error
	// ResetConfig returns the endpoint to the file's settings.
	ResetConfig(ctx context.Context, endpoint string) error
}

// Limits of the handler that callers do not set.
const (
	minTokenLen = 16
	maxTokenLen = 1024
	// maxBodyBytes bounds a control request's body.
	maxBodyBytes = 4 << 10
	// maxSettingsBytes bounds a settings patch.
	maxSettingsBytes = 64 << 10
	// maxReasonLen bounds a control request's reason in bytes.
	maxReasonLen = 256
)

func configError(field string, v any, rule string) error {
	return &core.ConfigError{Field: field, Value: v, Rule: rule}
}

// validate checks every field and returns c with defaults filled in.
func (c Config) validate() (Config, error) {
	ck := check.New("admin.Config.", configError)
	if c.Manager == nil {
		ck.Fail("Manager", nil, "is required")
	}
	if c.Prefix != "" {
		if !strings.HasPrefix(c.Prefix, "/") || strings.ContainsAny(c.Prefix, "?#") {
			ck.Fail("Prefix", c.Prefix, `must start with "/" and hold no "?" or "#", or be empty`)
		}
		c.Prefix = strings.TrimRight(c.Prefix, "/")
	}
	if c.Token != "" {
		if len(c.Token) < minTokenLen || len(c.Token) > maxTokenLen {
			ck.Fail("Token", "(hidden)", fmt.Sprintf("must be %d to %d bytes, or empty to disable changes (got %d bytes)", minTokenLen, maxTokenLen, len(c.Token)))
		} else if !printableASCII(c.Token) {
			ck.Fail("Token", "(hidden)", "must be printable ASCII without spaces: it travels in an HTTP header")
		}
	}
	if c.Cluster != nil && typedNil(c.Cluster) {
		ck.Fail("Cluster", fmt.Sprintf("(%T)(nil)", c.Cluster), "must not be a typed nil: leave the field unset for no cluster")
	}
	if c.Settings != nil && typedNil(c.Settings) {
		ck.Fail("Settings", fmt.Sprintf("(%T)(nil)", c.Settings), "must not be a typed nil: leave the field unset for no runtime settings")
	}
	for i, p := range c.OriginPatterns {
		if _, err := path.Match(strings.ToLower(p), ""); err != nil || p == "" {
			ck.Fail(fmt.Sprintf("OriginPatterns[%d]", i), p, `must be a non-empty path.Match pattern such as "*.example.com"`)
		}
	}
	ck.Int("MaxSubscribers", &c.MaxSubscribers, 64, 1, 10_000)
	ck.Int("SubscriberBuffer", &c.SubscriberBuffer, 64, 1, 4096)
	ck.Int("EventHistory", &c.EventHistory, 256, 1, 10_000)
	ck.Duration("PingInterval", &c.PingInterval, 30*time.Second, time.Millisecond, time.Hour)
	ck.Duration("WriteTimeout", &c.WriteTimeout, 10*time.Second, time.Millisecond, 5*time.Minute)
	ck.Duration("SnapshotInterval", &c.SnapshotInterval, 2*time.Second, 10*time.Millisecond, time.Hour)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, ck.Err()
}

// typedNil reports whether v, a non-nil interface value, holds a nil
// pointer, map, slice, channel or function: calling a method on it would
// panic later, far from the mistake.
func typedNil(v any) bool {
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Chan, reflect.Func, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
