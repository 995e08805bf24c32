package admin

import (
	"encoding/json"
	"github.com/bulwark-go/bulwark/events"
	"math"
	"time"

	"github.com/bulwark-go/bulwark/alert"
	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/health"
)

// typeSnapshot is the "type" of a feed message that carries a status.
const typeSnapshot = "snapshot"

// status is the body of GET …/status and, with Type set to "snapshot", the
// feed's snapshot message. Every list is present (possibly empty) and
// sorted by endpoint.
type status struct {
	// Type is "snapshot" on the feed and absent from GET …/status.
	Type string `json:"type,omitempty"`
	// Seq is the sequence number of the last feed event this status
	// includes: events with a higher Seq happened after (or during) it.
	Seq         uint64    `json:"seq"`
	GeneratedAt time.Time `json:"generated_at"`

	Breakers  []breakerStatus  `json:"breakers"`
	Bulkheads []bulkheadStatus `json:"bulkheads"`
	// PerUser is the Manager's per-user bulkhead; null without one.
	PerUser *perUserStatus   `json:"per_user"`
	SLOs    []core.SLOStatus `json:"slos"`
	// RateLimits and AdaptiveLimits are the endpoints' rate limits and
	// adaptive concurrency limits; UserRateLimit the per-user rate limit,
	// null without one.
	RateLimits     []rateLimitStatus `json:"rate_limits"`
	AdaptiveLimits []adaptiveStatus  `json:"adaptive_limits"`
	UserRateLimit  *rateLimitStatus  `json:"per_user_rate_limit"`
	Health         []health.Status   `json:"health"`
	Alerts         []alert.Alert     `json:"alerts"`
	// Faults are the running fault experiments, by end (see GET …/faults).
	Faults []faultJSON `json:"faults"`
	// Cluster lists the instances sharing a store's state, as the store
	// last published them; absent without such a store.
	Cluster *clusterStatus `json:"cluster,omitempty"`
	// Sample is every endpoint's newest history point, on the feed only:
	// the page appends it to the series GET …/history gave.
	Sample map[string]historyPoint `json:"sample,omitempty"`
}

// endpointStatus is the body of GET …/status/{endpoint}: everything known
// about one endpoint. Parts the endpoint does not have are null (or empty
// lists).
type endpointStatus struct {
	Endpoint    string           `json:"endpoint"`
	Seq         uint64           `json:"seq"`
	GeneratedAt time.Time        `json:"generated_at"`
	Breaker     *breakerStatus   `json:"breaker"`
	Bulkhead    *bulkheadStatus  `json:"bulkhead"`
	SLO         *core.SLOStatus  `json:"slo"`
	RateLimit   *rateLimitStatus `json:"rate_limit"`
	Adaptive    *adaptiveStatus  `json:"adaptive_limit"`
	Health      []health.Status  `json:"health"`
	// Alerts are the active alerts whose "endpoint" metadata names it.
	Alerts []alert.Alert `json:"alerts"`
	// Faults are the fault experiments running on it.
	Faults []faultJSON `json:"faults"`
	// Settings and SettingsSource are the endpoint's settings in effect
	// and where they came from, when Config.Settings is set.
	Settings       json.RawMessage `json:"settings,omitempty"`
	SettingsSource string          `json:"settings_source,omitempty"`
}

// breakerStatus is a breaker's snapshot (see core.Snapshot for its
// fields, held_by and hold_until among them) plus RetryAfterSeconds.
type breakerStatus struct {
	core.Snapshot
	// RetryAfterSeconds is how long until an Open breaker lets a probe
	// through, rounded up to whole seconds as in a Retry-After header; 0
	// in every other state.
	RetryAfterSeconds int64 `json:"retry_after_seconds"`
}

// bulkheadStatus is one endpoint bulkhead's load and counters.
type bulkheadStatus struct {
	Endpoint string `json:"endpoint"`
	// Active slots held and calls Queued now, and the limits.
	Active        int `json:"active"`
	Queued        int `json:"queued"`
	MaxConcurrent int `json:"max_concurrent"`
	MaxQueue      int `json:"max_queue"`
	// Counters since the bulkhead was made.
	Total     uint64 `json:"total"`
	Admitted  uint64 `json:"admitted"`
	Rejected  uint64 `json:"rejected"`
	TimedOut  uint64 `json:"timed_out"`
	Cancelled uint64 `json:"cancelled"`
	// QueueWaitSeconds is the total time calls spent waiting in the queue.
	QueueWaitSeconds float64 `json:"queue_wait_seconds"`
}

func bulkheadStatusOf(e *core.Endpoint, b *core.Bulkhead) bulkheadStatus {
	s := b.Stats()
	return bulkheadStatus{
		Endpoint: e.Name(), Active: s.Active, Queued: s.Queued,
		MaxConcurrent: s.MaxConcurrent, MaxQueue: s.MaxQueue,
		Total: s.Total, Admitted: s.Admitted, Rejected: s.Rejected,
		TimedOut: s.TimedOut, Cancelled: s.Cancelled,
		QueueWaitSeconds: s.QueueTime.Sum.Seconds(),
	}
}

// rateLimitStatus is a rate limit's counters and the rate in force.
type rateLimitStatus struct {
	Endpoint string `json:"endpoint,omitempty"`
	Allowed  uint64 `json:"allowed"`
	Refused  uint64 `json:"refused"`
	// Rate (calls/s) and Burst in force: the configured ones, or this
	// instance's share when the limit is shared across instances.
	Rate  float64 `json:"rate"`
	Burst float64 `json:"burst"`
	// Tokens is how many calls would pass at once now (endpoint limits).
	Tokens float64 `json:"tokens"`
	// Shared says that the limit is the cluster's, split among the
	// instances by a store; Share is this instance's part of it (a
	// fraction: Rate and Burst are the configured ones times Share).
	// Both are left out of a limit that is not shared.
	Shared bool    `json:"shared,omitempty"`
	Share  float64 `json:"share,omitempty"`
	// Users, MaxUsers and TooManyUsers describe the per-user limit's
	// table.
	Users        int    `json:"users,omitempty"`
	MaxUsers     int    `json:"max_users,omitempty"`
	TooManyUsers uint64 `json:"too_many_users,omitempty"`
}

func rateLimitStatusOf(name string, s core.RateLimitStats) rateLimitStatus {
	return rateLimitStatus{
		Endpoint: name, Allowed: s.Allowed, Refused: s.Refused, Rate: s.Rate, Burst: s.Burst, Tokens: s.Tokens,
		Users: s.Users, MaxUsers: s.MaxUsers, TooManyUsers: s.TooManyUsers,
	}
}

// endpointRateLimitOf reports an endpoint's rate limiter, with its share
// when the limit is shared across instances.
func endpointRateLimitOf(e *core.Endpoint, rl *core.RateLimiter) rateLimitStatus {
	st := rl.Stats()
	s := rateLimitStatusOf(e.Name(), st)
	if c := e.Config().RateLimit; c != nil && c.Shared {
		s.Shared, s.Share = true, st.Share
	}
	return s
}

// adaptiveStatus is an adaptive concurrency limit's state.
type adaptiveStatus struct {
	Endpoint string `json:"endpoint"`
	Limit    int    `json:"limit"`
	InFlight int    `json:"in_flight"`
	Queued   int    `json:"queued"`
	Admitted uint64 `json:"admitted"`
	// Shed counts refusals by priority level (0 the least important).
	Shed []uint64 `json:"shed"`
	// BaselineMS is the latency taken as healthy, RecentMS the last sample
	// window's mean.
	BaselineMS float64 `json:"baseline_ms"`
	RecentMS   float64 `json:"recent_ms"`
}

func adaptiveStatusOf(name string, l *core.AdaptiveLimiter) adaptiveStatus {
	s := l.Stats()
	return adaptiveStatus{
		Endpoint: name, Limit: s.Limit, InFlight: s.InFlight, Queued: s.Queued, Admitted: s.Admitted,
		Shed: nonNil(s.Shed), BaselineMS: ms(s.Baseline), RecentMS: ms(s.Recent),
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// perUserStatus is the per-user bulkhead: totals over its users and the
// busiest few. User IDs appear here and nowhere else.
type perUserStatus struct {
	// Users is how many users it tracks now, MaxUsers its bound.
	Users    int `json:"users"`
	MaxUsers int `json:"max_users"`
	// Evicted counts users forgotten to stay within MaxUsers or when idle;
	// TooManyUsers counts calls refused because the bound was reached.
	Evicted      uint64 `json:"evicted"`
	TooManyUsers uint64 `json:"too_many_users"`
	// MaxConcurrent and MaxQueue are each user's limits (0 when per-user
	// limiting is disabled).
	MaxConcurrent int `json:"max_concurrent"`
	MaxQueue      int `json:"max_queue"`
	// The load and counters summed over every user.
	Active   int    `json:"active"`
	Queued   int    `json:"queued"`
	Total    uint64 `json:"total"`
	Rejected uint64 `json:"rejected"`
	TimedOut uint64 `json:"timed_out"`
	// TopUsers are the busiest users, busiest first, as many as the
	// per-user bulkhead's TopN.
	TopUsers []userStatus `json:"top_users"`
}

// userStatus is one user's share of the per-user bulkhead.
type userStatus struct {
	User     string `json:"user"`
	Active   int    `json:"active"`
	Queued   int    `json:"queued"`
	Total    uint64 `json:"total"`
	Rejected uint64 `json:"rejected"`
	TimedOut uint64 `json:"timed_out"`
}

func perUserStatusOf(p *core.PerUserBulkhead) *perUserStatus {
	st := p.Stats()
	users := p.TopUsers()
	u := &perUserStatus{
		Users: st.Users, MaxUsers: st.MaxUsers, Evicted: st.Evicted, TooManyUsers: st.TooManyUsers,
		MaxConcurrent: st.All.MaxConcurrent, MaxQueue: st.All.MaxQueue,
		Active: st.All.Active, Queued: st.All.Queued, Total: st.All.Total, Rejected: st.All.Rejected, TimedOut: st.All.TimedOut,
		TopUsers: make([]userStatus, 0, len(users)),
	}
	for _, t := range users {
		u.TopUsers = append(u.TopUsers, userStatus{
			User: t.User, Active: t.Stats.Active, Queued: t.Stats.Queued,
			Total: t.Stats.Total, Rejected: t.Stats.Rejected, TimedOut: t.Stats.TimedOut,
		})
	}
	return u
}

func breakerStatusOf(b *core.Breaker) breakerStatus {
	s := breakerStatus{Snapshot: b.Snapshot()}
	if d := b.RetryAfter(); d > 0 && s.State == events.Open {
		s.RetryAfterSeconds = int64(math.Ceil(d.Seconds()))
	}
	return s
}

// status builds the full status as of feed sequence seq; reveal shows the
// values of the fault experiments' filters.
func (h *Handler) status(seq uint64, reveal bool) status {
	bs := h.breakers()
	eps := h.cfg.Manager.Endpoints()
	st := status{
		Seq:            seq,
		GeneratedAt:    h.clock.Now().UTC(),
		Breakers:       make([]breakerStatus, 0, len(bs)),
		Bulkheads:      []bulkheadStatus{},
		SLOs:           []core.SLOStatus{},
		RateLimits:     []rateLimitStatus{},
		AdaptiveLimits: []adaptiveStatus{},
		Health:         []health.Status{},
		Alerts:         []alert.Alert{},
		Faults:         h.faultsOf("", reveal),
	}
	for _, b := range bs {
		st.Breakers = append(st.Breakers, breakerStatusOf(b))
	}
	for _, e := range eps {
		if bh := e.Bulkhead(); bh != nil {
			st.Bulkheads = append(st.Bulkheads, bulkheadStatusOf(e, bh))
		}
		if t := e.SLO(); t != nil {
			st.SLOs = append(st.SLOs, sloStatusOf(e, t))
		}
		if rl := e.RateLimiter(); rl != nil {
			st.RateLimits = append(st.RateLimits, endpointRateLimitOf(e, rl))
		}
		if al := e.Adaptive(); al != nil {
			st.AdaptiveLimits = append(st.AdaptiveLimits, adaptiveStatusOf(e.Name(), al))
		}
	}
	if p := h.cfg.Manager.PerUser(); p != nil {
		st.PerUser = perUserStatusOf(p)
	}
	if p := h.cfg.Manager.PerUserRateLimiter(); p != nil {
		s := rateLimitStatusOf("", p.Stats())
		st.UserRateLimit = &s
	}
	if h.cfg.Health != nil {
		st.Health = nonNil(h.cfg.Health.Statuses())
	}
	if h.cfg.Alerts != nil {
		st.Alerts = nonNil(h.cfg.Alerts.Active())
	}
	st.Cluster = h.cluster.status()
	return st
}

// sloStatusOf reads an endpoint's SLO tracker, named by the endpoint.
func sloStatusOf(e *core.Endpoint, t *core.SLOTracker) core.SLOStatus {
	s := t.Status()
	s.Endpoint = e.Name()
	return s
}

// endpointStatus reports one endpoint; ok is false when nothing knows it.
// reveal shows the values of its fault experiments' filters.
func (h *Handler) endpointStatus(name string, seq uint64, reveal bool) (endpointStatus, bool) {
	es := endpointStatus{
		Endpoint: name, Seq: seq, GeneratedAt: h.clock.Now().UTC(),
		Health: []health.Status{}, Alerts: []alert.Alert{}, Faults: h.faultsOf(name, reveal),
	}
	found := false
	if b, ok := h.breaker(name); ok {
		s := breakerStatusOf(b)
		es.Breaker, found = &s, true
	}
	if e, ok := h.cfg.Manager.Lookup(name); ok {
		if bh := e.Bulkhead(); bh != nil {
			s := bulkheadStatusOf(e, bh)
			es.Bulkhead = &s
		}
		if t := e.SLO(); t != nil {
			s := sloStatusOf(e, t)
			es.SLO = &s
		}
		if rl := e.RateLimiter(); rl != nil {
			s := endpointRateLimitOf(e, rl)
			es.RateLimit = &s
		}
		if al := e.Adaptive(); al != nil {
			s := adaptiveStatusOf(name, al)
			es.Adaptive = &s
		}
	}
	if h.cfg.Health != nil {
		for _, s := range h.cfg.Health.Statuses() {
			if s.Endpoint == name {
				es.Health, found = append(es.Health, s), true
			}
		}
	}
	if h.cfg.Alerts != nil {
		for _, a := range h.cfg.Alerts.Active() {
			if a.Type.Metadata[alert.MetaEndpoint] == name {
				es.Alerts = append(es.Alerts, a)
			}
		}
	}
	if found && h.cfg.Settings != nil {
		es.Settings, es.SettingsSource = h.settingsOf(name)
	}
	return es, found
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
