package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/bulwark-go/bulwark/alert"
	"github.com/bulwark-go/bulwark/core"
)

// Defaults and limits of Config. Every zero field takes its default.
const (
	DefaultMaxSubscribers   = 64
	MaxMaxSubscribers       = 10_000
	DefaultSubscriberBuffer = 64
	MaxSubscriberBuffer     = 4096
	DefaultEventHistory     = 256
	MaxEventHistory         = 10_000
	DefaultTopUsers         = 10
	MaxTopUsers             = 100
	DefaultPingInterval     = 30 * time.Second
	DefaultWriteTimeout     = 10 * time.Second
	DefaultSnapshotInterval = 2 * time.Second

	// MinTokenLen and MaxTokenLen bound Config.Token in bytes. The floor
	// keeps a guessable token from guarding breaker control.
	MinTokenLen = 16
	MaxTokenLen = 1024
	// MaxBodyBytes bounds a control request's body.
	MaxBodyBytes = 4 << 10
	// MaxReasonLen bounds a control request's reason in bytes.
	MaxReasonLen = 256
)

// Config configures a Handler. Only Manager is required; the zero value of
// every other field is a safe default.
type Config struct {
	// Manager holds the breakers to report and control, and its Bus is the
	// source of the live feed. Required.
	Manager *core.Manager

	// Prefix is the path the handler is mounted at, such as "/admin", for
	// routers that pass the full path through (chi's Mount, say). Leave it
	// empty when the handler already sees paths relative to its mount
	// point, as behind http.StripPrefix. See the package documentation.
	Prefix string

	// Token enables the control routes (POST …/breakers/{endpoint}) and
	// then also guards status, events and the feed, unless PublicRead is
	// set. Clients send it as "Authorization: Bearer <token>"; browsers
	// opening the feed send it as a WebSocket subprotocol (see the package
	// documentation). Empty disables control: it answers 403. When set,
	// MinTokenLen to MaxTokenLen bytes.
	Token string
	// PublicRead serves status, events and the feed without the token even
	// when Token is set; control still needs it. Use it only when the
	// mount point is already protected or the data is not sensitive
	// (per-user bulkhead stats name users).
	PublicRead bool

	// Cluster, when set, carries control actions to every instance (a
	// shared-state store) instead of applying them to the local breaker.
	Cluster ClusterController

	// Optional sources of the other components' status. Each must be safe
	// for concurrent use and cheap: it is called for every status request
	// and feed snapshot. Nil leaves that part of the status empty, except
	// Bulkheads: nil reports the Manager's endpoint bulkheads.
	Bulkheads     BulkheadSource
	UserBulkheads UserBulkheadSource
	SLO           SLOSource
	Health        HealthSource
	Alerts        AlertSource

	// OriginPatterns lists the host patterns (path.Match syntax, as in
	// websocket.AcceptOptions) of other origins allowed to open the feed.
	// The page's own host is always allowed; requests without an Origin
	// header (non-browser clients) are too.
	OriginPatterns []string
	// MaxSubscribers bounds the feed's WebSocket clients and Register
	// receivers together; past it the feed answers 503. Default 64; 1 to
	// 10,000.
	MaxSubscribers int
	// SubscriberBuffer is how many messages may wait for one subscriber.
	// A subscriber that falls this far behind is disconnected. Default 64;
	// 1 to 4096.
	SubscriberBuffer int
	// EventHistory is how many recent feed messages GET …/events keeps.
	// Default 256; 1 to 10,000.
	EventHistory int
	// TopUsers bounds the per-user list of each per-user bulkhead.
	// Default 10; 1 to 100.
	TopUsers int
	// PingInterval is how often the feed pings an idle client to keep the
	// connection alive and detect dead peers. Default 30s; 1ms to 1h.
	PingInterval time.Duration
	// WriteTimeout bounds one feed write or ping. Default 10s; 1ms to 5m.
	WriteTimeout time.Duration
	// SnapshotInterval is how often the feed sends a fresh snapshot (the
	// counts behind the dashboard's rates and bars) to WebSocket clients.
	// Default 2s; 10ms to 1h.
	SnapshotInterval time.Duration

	// Logger receives control actions (an audit trail) and feed
	// disconnects. Nil means slog.Default().
	Logger *slog.Logger
}

// ClusterController applies control actions to every instance sharing an
// endpoint's state; *store.RedisStore satisfies it. The reason of a close,
// reset or disable goes to the audit log only, as the breaker records none.
type ClusterController interface {
	ForceOpen(ctx context.Context, endpoint, reason string) error
	Reset(ctx context.Context, endpoint string) error
	Disable(ctx context.Context, endpoint string) error
}

// BulkheadSource reports endpoint bulkheads. BulkheadList and BulkheadFunc
// implement it.
type BulkheadSource interface {
	BulkheadStatuses() []BulkheadStatus
}

// UserBulkheadSource reports per-user bulkheads. It may return every
// user it tracks in TopUsers: the handler keeps the first Config.TopUsers.
// UserBulkheadFunc implements it.
type UserBulkheadSource interface {
	UserBulkheadStatuses() []UserBulkheadStatus
}

// SLOSource reports SLO trackers; *core.SLOGuard implements it.
type SLOSource interface {
	Statuses() []core.SLOStatus
}

// HealthSource reports health checks. HealthFunc implements it, so a
// health.Monitor is wired with a short conversion (see HealthStatus).
type HealthSource interface {
	HealthStatuses() []HealthStatus
}

// AlertSource reports the alerts that are active now;
// *alert.Manager implements it.
type AlertSource interface {
	Active() []alert.Alert
}

// BulkheadFunc adapts a function to a BulkheadSource.
type BulkheadFunc func() []BulkheadStatus

// BulkheadStatuses calls f.
func (f BulkheadFunc) BulkheadStatuses() []BulkheadStatus { return f() }

// BulkheadList is a BulkheadSource over a fixed set of bulkheads.
type BulkheadList []*core.Bulkhead

// BulkheadStatuses reports every bulkhead in the list.
func (l BulkheadList) BulkheadStatuses() []BulkheadStatus {
	out := make([]BulkheadStatus, 0, len(l))
	for _, b := range l {
		if b != nil {
			out = append(out, BulkheadStatusOf(b))
		}
	}
	return out
}

// PerUserBulkheads is a UserBulkheadSource over named per-user bulkheads,
// reported in name order. The name says what each guards: "global", or an
// endpoint.
type PerUserBulkheads map[string]*core.PerUserBulkhead

// UserBulkheadStatuses reports every per-user bulkhead in the map.
func (m PerUserBulkheads) UserBulkheadStatuses() []UserBulkheadStatus {
	out := make([]UserBulkheadStatus, 0, len(m))
	for _, name := range slices.Sorted(maps.Keys(m)) {
		if p := m[name]; p != nil {
			out = append(out, UserBulkheadStatusOf(name, p))
		}
	}
	return out
}

// UserBulkheadFunc adapts a function to a UserBulkheadSource.
type UserBulkheadFunc func() []UserBulkheadStatus

// UserBulkheadStatuses calls f.
func (f UserBulkheadFunc) UserBulkheadStatuses() []UserBulkheadStatus { return f() }

// HealthFunc adapts a function to a HealthSource.
type HealthFunc func() []HealthStatus

// HealthStatuses calls f.
func (f HealthFunc) HealthStatuses() []HealthStatus { return f() }

// checker collects configuration errors, each naming its field.
type checker struct {
	prefix string
	errs   []error
}

func (c *checker) fail(field string, v any, rule string) {
	c.errs = append(c.errs, &core.ConfigError{Field: c.prefix + field, Value: v, Rule: rule})
}

// intRange fills a zero *v with def and reports any other value outside
// [lo, hi].
func (c *checker) intRange(field string, v *int, def, lo, hi int) {
	if *v == 0 {
		*v = def
	} else if *v < lo || *v > hi {
		c.fail(field, *v, fmt.Sprintf("must be between %d and %d (0 means the default, %d)", lo, hi, def))
	}
}

func (c *checker) durRange(field string, v *time.Duration, def, lo, hi time.Duration) {
	if *v == 0 {
		*v = def
	} else if *v < lo || *v > hi {
		c.fail(field, *v, fmt.Sprintf("must be between %s and %s (0 means the default, %s)", lo, hi, def))
	}
}

func (c *checker) err() error { return errors.Join(c.errs...) }

// validate checks every field and returns c with defaults filled in.
func (c Config) validate() (Config, error) {
	ck := checker{prefix: "admin.Config."}
	if c.Manager == nil {
		ck.fail("Manager", nil, "is required")
	}
	if c.Prefix != "" {
		if !strings.HasPrefix(c.Prefix, "/") || strings.ContainsAny(c.Prefix, "?#") {
			ck.fail("Prefix", c.Prefix, `must start with "/" and hold no "?" or "#", or be empty`)
		}
		c.Prefix = strings.TrimRight(c.Prefix, "/")
	}
	if c.Token != "" {
		if len(c.Token) < MinTokenLen || len(c.Token) > MaxTokenLen {
			ck.fail("Token", "(hidden)", fmt.Sprintf("must be %d to %d bytes, or empty to disable control (got %d bytes)", MinTokenLen, MaxTokenLen, len(c.Token)))
		} else if !printableASCII(c.Token) {
			ck.fail("Token", "(hidden)", "must be printable ASCII without spaces: it travels in an HTTP header")
		}
	}
	for _, p := range c.OriginPatterns {
		if _, err := path.Match(strings.ToLower(p), ""); err != nil || p == "" {
			ck.fail("OriginPatterns", p, `must be a non-empty path.Match pattern such as "*.example.com"`)
		}
	}
	c.checkLimits(&ck)
	ck.intRange("TopUsers", &c.TopUsers, DefaultTopUsers, 1, MaxTopUsers)
	ck.durRange("PingInterval", &c.PingInterval, DefaultPingInterval, time.Millisecond, time.Hour)
	ck.durRange("WriteTimeout", &c.WriteTimeout, DefaultWriteTimeout, time.Millisecond, 5*time.Minute)
	ck.durRange("SnapshotInterval", &c.SnapshotInterval, DefaultSnapshotInterval, 10*time.Millisecond, time.Hour)
	return c, ck.err()
}

// checkLimits checks (and defaults) the fields a Notifier shares.
func (c *Config) checkLimits(ck *checker) {
	ck.intRange("MaxSubscribers", &c.MaxSubscribers, DefaultMaxSubscribers, 1, MaxMaxSubscribers)
	ck.intRange("SubscriberBuffer", &c.SubscriberBuffer, DefaultSubscriberBuffer, 1, MaxSubscriberBuffer)
	ck.intRange("EventHistory", &c.EventHistory, DefaultEventHistory, 1, MaxEventHistory)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// printable reports whether s is valid UTF-8 without control characters;
// text that reaches logs and the page must not forge lines.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
