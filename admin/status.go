package admin

import (
	"math"
	"time"

	"github.com/bulwark-go/bulwark/alert"
	"github.com/bulwark-go/bulwark/core"
)

// TypeSnapshot is the "type" of a feed message that carries a Status.
const TypeSnapshot = "snapshot"

// Status is the body of GET …/status and, with Type set to "snapshot", the
// feed's snapshot message. Every list is present (possibly empty) and
// sorted as its source sorts it.
type Status struct {
	// Type is "snapshot" on the feed and absent from GET …/status.
	Type string `json:"type,omitempty"`
	// Seq is the sequence number of the last feed event this status
	// includes: events with a higher Seq happened after (or during) it.
	Seq         uint64    `json:"seq"`
	GeneratedAt time.Time `json:"generated_at"`

	Breakers      []BreakerStatus      `json:"breakers"`
	Bulkheads     []BulkheadStatus     `json:"bulkheads"`
	UserBulkheads []UserBulkheadStatus `json:"user_bulkheads"`
	SLOs          []core.SLOStatus     `json:"slos"`
	Health        []HealthStatus       `json:"health"`
	Alerts        []alert.Alert        `json:"alerts"`
}

// EndpointStatus is the body of GET …/status/{endpoint}: everything known
// about one endpoint. Parts the endpoint does not have are null (or empty
// lists).
type EndpointStatus struct {
	Endpoint    string          `json:"endpoint"`
	Seq         uint64          `json:"seq"`
	GeneratedAt time.Time       `json:"generated_at"`
	Breaker     *BreakerStatus  `json:"breaker"`
	Bulkhead    *BulkheadStatus `json:"bulkhead"`
	SLO         *core.SLOStatus `json:"slo"`
	Health      []HealthStatus  `json:"health"`
	// Alerts are the active alerts whose "endpoint" metadata names it.
	Alerts []alert.Alert `json:"alerts"`
}

// BreakerStatus is a breaker's snapshot (see core.Snapshot for its fields)
// plus RetryAfterSeconds.
type BreakerStatus struct {
	core.Snapshot
	// RetryAfterSeconds is how long until an Open breaker lets a probe
	// through, rounded up to whole seconds as in a Retry-After header; 0
	// in every other state.
	RetryAfterSeconds int64 `json:"retry_after_seconds"`
}

// BulkheadStatus is one endpoint bulkhead's load and counters.
type BulkheadStatus struct {
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

// BulkheadStatusOf reports b.
func BulkheadStatusOf(b *core.Bulkhead) BulkheadStatus {
	s := b.Stats()
	return BulkheadStatus{
		Endpoint: b.Name(), Active: s.Active, Queued: s.Queued,
		MaxConcurrent: s.MaxConcurrent, MaxQueue: s.MaxQueue,
		Total: s.Total, Admitted: s.Admitted, Rejected: s.Rejected,
		TimedOut: s.TimedOut, Cancelled: s.Cancelled,
		QueueWaitSeconds: s.QueueTime.Sum.Seconds(),
	}
}

// UserBulkheadStatus is one per-user bulkhead: totals over its users and
// the busiest few. User IDs appear here, never in metrics.
type UserBulkheadStatus struct {
	// Name says what the per-user bulkhead guards (an endpoint, or
	// "global").
	Name string `json:"name"`
	// Users is how many users it tracks now, MaxUsers its bound.
	Users    int `json:"users"`
	MaxUsers int `json:"max_users"`
	// Evicted counts users forgotten to stay within MaxUsers or when idle;
	// TooManyUsers counts calls refused because the bound was reached.
	Evicted      uint64 `json:"evicted"`
	TooManyUsers uint64 `json:"too_many_users"`
	// The load and counters summed over every tracked user.
	Active   int    `json:"active"`
	Queued   int    `json:"queued"`
	Total    uint64 `json:"total"`
	Rejected uint64 `json:"rejected"`
	TimedOut uint64 `json:"timed_out"`
	// TopUsers are the busiest users, busiest first, at most
	// Config.TopUsers of them.
	TopUsers []UserStatus `json:"top_users"`
}

// UserBulkheadStatusOf reports p under name, with the users its TopUsers
// returns (the handler keeps the first Config.TopUsers).
func UserBulkheadStatusOf(name string, p *core.PerUserBulkhead) UserBulkheadStatus {
	st := p.Stats()
	top := p.TopUsers()
	u := UserBulkheadStatus{
		Name: name, Users: st.Users, MaxUsers: st.MaxUsers, Evicted: st.Evicted, TooManyUsers: st.TooManyUsers,
		Active: st.All.Active, Queued: st.All.Queued, Total: st.All.Total, Rejected: st.All.Rejected, TimedOut: st.All.TimedOut,
		TopUsers: make([]UserStatus, 0, len(top)),
	}
	for _, t := range top {
		u.TopUsers = append(u.TopUsers, UserStatus{
			User: t.User, Active: t.Stats.Active, Queued: t.Stats.Queued,
			Total: t.Stats.Total, Rejected: t.Stats.Rejected, TimedOut: t.Stats.TimedOut,
		})
	}
	return u
}

// UserStatus is one user's share of a per-user bulkhead.
type UserStatus struct {
	User     string `json:"user"`
	Active   int    `json:"active"`
	Queued   int    `json:"queued"`
	Total    uint64 `json:"total"`
	Rejected uint64 `json:"rejected"`
	TimedOut uint64 `json:"timed_out"`
}

// HealthStatus is one health check's latest verdict. It carries the fields
// of a health.Status without its history, so wiring a monitor is a loop:
//
//	admin.HealthFunc(func() []admin.HealthStatus {
//		var out []admin.HealthStatus
//		for _, s := range mon.Statuses() {
//			out = append(out, admin.HealthStatus{Endpoint: s.Endpoint, Probe: s.Probe,
//				Healthy: s.Healthy, Last: admin.HealthResultOf(s.Last.OK, s.Last.Latency, s.Last.Err, s.Last.Time),
//				ConsecutiveFailures: s.ConsecutiveFailures, ConsecutiveSuccesses: s.ConsecutiveSuccesses,
//				Checks: s.Checks, Failures: s.Failures, ForcedOpen: s.ForcedOpen})
//		}
//		return out
//	})
type HealthStatus struct {
	Endpoint string `json:"endpoint"`
	Probe    string `json:"probe"`
	Healthy  bool   `json:"healthy"`
	// Last is the latest check (zero before the first).
	Last                 HealthResult `json:"last"`
	ConsecutiveFailures  int          `json:"consecutive_failures"`
	ConsecutiveSuccesses int          `json:"consecutive_successes"`
	Checks               uint64       `json:"checks"`
	Failures             uint64       `json:"failures"`
	// ForcedOpen reports whether the check holds the breaker open now.
	ForcedOpen bool `json:"forced_open"`
}

// HealthResult is one check's outcome.
type HealthResult struct {
	OK        bool      `json:"ok"`
	LatencyMS float64   `json:"latency_ms"`
	Error     string    `json:"error,omitempty"`
	Time      time.Time `json:"time"`
}

// HealthResultOf builds a HealthResult from a check's fields.
func HealthResultOf(ok bool, latency time.Duration, err error, at time.Time) HealthResult {
	r := HealthResult{OK: ok, LatencyMS: float64(latency) / float64(time.Millisecond), Time: at}
	if err != nil {
		r.Error = err.Error()
	}
	return r
}

// breakerStatus reports one breaker.
func breakerStatus(b *core.Breaker) BreakerStatus {
	s := BreakerStatus{Snapshot: b.Snapshot()}
	if d := b.RetryAfter(); d > 0 {
		s.RetryAfterSeconds = int64(math.Ceil(d.Seconds()))
	}
	return s
}

// status builds the full status as of feed sequence seq.
func (h *Handler) status(seq uint64) Status {
	bs := h.breakers()
	st := Status{
		Seq:           seq,
		GeneratedAt:   h.clock.Now().UTC(),
		Breakers:      make([]BreakerStatus, 0, len(bs)),
		Bulkheads:     []BulkheadStatus{},
		UserBulkheads: []UserBulkheadStatus{},
		SLOs:          []core.SLOStatus{},
		Health:        []HealthStatus{},
		Alerts:        []alert.Alert{},
	}
	for _, b := range bs {
		st.Breakers = append(st.Breakers, breakerStatus(b))
	}
	st.Bulkheads = nonNil(h.bulkheads().BulkheadStatuses())
	if h.cfg.UserBulkheads != nil {
		st.UserBulkheads = nonNil(h.cfg.UserBulkheads.UserBulkheadStatuses())
		for i := range st.UserBulkheads {
			u := &st.UserBulkheads[i]
			u.TopUsers = nonNil(u.TopUsers[:min(len(u.TopUsers), h.cfg.TopUsers)])
		}
	}
	if h.cfg.SLO != nil {
		st.SLOs = nonNil(h.cfg.SLO.Statuses())
	}
	if h.cfg.Health != nil {
		st.Health = nonNil(h.cfg.Health.HealthStatuses())
	}
	if h.cfg.Alerts != nil {
		st.Alerts = nonNil(h.cfg.Alerts.Active())
	}
	return st
}

// endpointStatus reports one endpoint; ok is false when no source knows it.
func (h *Handler) endpointStatus(name string, seq uint64) (EndpointStatus, bool) {
	es := EndpointStatus{
		Endpoint: name, Seq: seq, GeneratedAt: h.clock.Now().UTC(),
		Health: []HealthStatus{}, Alerts: []alert.Alert{},
	}
	found := false
	if b, ok := h.breaker(name); ok {
		s := breakerStatus(b)
		es.Breaker, found = &s, true
	}
	for _, s := range h.bulkheads().BulkheadStatuses() {
		if s.Endpoint == name {
			es.Bulkhead, found = &s, true
			break
		}
	}
	if h.cfg.SLO != nil {
		for _, s := range h.cfg.SLO.Statuses() {
			if s.Endpoint == name {
				es.SLO, found = &s, true
				break
			}
		}
	}
	if h.cfg.Health != nil {
		for _, s := range h.cfg.Health.HealthStatuses() {
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
	return es, found
}

// bulkheads is the configured bulkhead source, or the Manager's.
func (h *Handler) bulkheads() BulkheadSource {
	if h.cfg.Bulkheads != nil {
		return h.cfg.Bulkheads
	}
	return BulkheadFunc(func() []BulkheadStatus {
		var l BulkheadList
		for _, e := range h.cfg.Manager.Endpoints() {
			if bh := e.Bulkhead(); bh != nil {
				l = append(l, bh)
			}
		}
		return l.BulkheadStatuses()
	})
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
