package bulwarkotel

import (
	"context"
	"errors"
	"github.com/bulwark-go/bulwark/events"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/bulwark-go/bulwark/core"
)

// Attribute keys. OpenTelemetry has no semantic conventions for
// resilience yet, so every key is in Bulwark's namespace; the names follow
// the spirit of the open proposal (a breaker's name and state, a retry's
// attempt, a rate limiter's result). User IDs are never an attribute.
const (
	keyEndpoint      = attribute.Key("bulwark.endpoint")
	keyOutcome       = attribute.Key("bulwark.outcome")
	keyState         = attribute.Key("bulwark.circuit_breaker.state")
	keyPreviousState = attribute.Key("bulwark.circuit_breaker.previous_state")
	keyReason        = attribute.Key("bulwark.rejection.reason")
	keyRetryAfter    = attribute.Key("bulwark.rejection.retry_after")
	keyWindow        = attribute.Key("bulwark.slo.window")
	keyRetryReason   = attribute.Key("bulwark.retry.reason")
	keyAttempt       = attribute.Key("bulwark.retry.attempt")
	keyWait          = attribute.Key("bulwark.retry.wait")
	keyHedgeDelay    = attribute.Key("bulwark.hedge.delay")
	keyFaultKind     = attribute.Key("bulwark.fault.kind")
)

// stateNames are the bulwark.circuit_breaker.state values, indexed by
// events.State: lowercase snake_case, as OpenTelemetry spells enum values.
var stateNames = [...]string{
	events.Closed:     "closed",
	events.Open:       "open",
	events.HalfOpen:   "half_open",
	events.ForcedOpen: "forced_open",
	events.Disabled:   "disabled",
}

func stateName(s events.State) string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return s.String()
}

// retryReasons are the bulwark.retry.reason values, in the order of
// series.giveUps.
var retryReasons = [...]string{"exhausted", "circuit_open", "budget_spent", "deadline"}

// instruments are every instrument a Telemetry reports through.
type instruments struct {
	duration metric.Float64Histogram

	state       metric.Int64ObservableUpDownCounter
	calls       metric.Int64ObservableCounter
	transitions metric.Int64ObservableCounter
	rejections  metric.Int64ObservableCounter

	bhActive, bhQueued    metric.Int64ObservableUpDownCounter
	bhRequests, bhWaits   metric.Int64ObservableCounter
	bhQueueTime           metric.Float64ObservableCounter
	sloSuccess, sloBudget metric.Float64ObservableGauge
	sloBurn               metric.Float64ObservableGauge
	puUsers               metric.Int64ObservableUpDownCounter

	retryCalls, retryRetries, retryGiveUps metric.Int64ObservableCounter

	rlAllowed, purlAllowed metric.Int64ObservableCounter
	rlRate                 metric.Float64ObservableGauge
	purlUsers              metric.Int64ObservableUpDownCounter
	alLimit, alActive      metric.Int64ObservableUpDownCounter
	alQueued               metric.Int64ObservableUpDownCounter
	alAdmitted             metric.Int64ObservableCounter
	alBaseline, alRecent   metric.Float64ObservableGauge
	timeouts, hedges       metric.Int64ObservableCounter

	faults metric.Int64ObservableCounter
}

func (in *instruments) create(m metric.Meter) error {
	var errs []error
	keep := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	i64c := func(name, unit, desc string) metric.Int64ObservableCounter {
		c, err := m.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		keep(err)
		return c
	}
	i64u := func(name, unit, desc string) metric.Int64ObservableUpDownCounter {
		c, err := m.Int64ObservableUpDownCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		keep(err)
		return c
	}
	f64g := func(name, unit, desc string) metric.Float64ObservableGauge {
		g, err := m.Float64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
		keep(err)
		return g
	}
	var err error
	in.duration, err = m.Float64Histogram("bulwark.request.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of calls through an endpoint's policies (each attempt, outbound), measured by the HTTP middleware and transport."),
		metric.WithExplicitBucketBoundaries(core.DurationBuckets()...))
	keep(err)

	in.state = i64u("bulwark.circuit_breaker.state", "{circuit_breaker}",
		"Circuit breakers in each state: 1 for the state an endpoint's breaker is in, 0 for the others.")
	in.calls = i64c("bulwark.circuit_breaker.calls", "{call}",
		"Calls seen by the breaker, by outcome: success, failure (real failures only), injected_failure (made by a fault experiment) or rejected.")
	in.transitions = i64c("bulwark.circuit_breaker.transitions", "{transition}", "Breaker state transitions, by previous and new state.")
	in.rejections = i64c("bulwark.rejections", "{request}",
		"Requests a policy refused, by reason: circuit_open, bulkhead_full, bulkhead_timeout, rate_limited, concurrency_limit; user_limit and, for the per-user rate limit, rate_limited without an endpoint.")

	in.bhActive = i64u("bulwark.bulkhead.active_requests", "{request}", "Requests holding a bulkhead slot now.")
	in.bhQueued = i64u("bulwark.bulkhead.queued_requests", "{request}", "Requests waiting in the bulkhead's queue now.")
	in.bhRequests = i64c("bulwark.bulkhead.requests", "{request}", "Requests that asked the bulkhead for a slot.")
	in.bhWaits = i64c("bulwark.bulkhead.queue.waits", "{request}", "Requests that waited in the bulkhead's queue (and then got a slot, timed out or gave up).")
	var ferr error
	in.bhQueueTime, ferr = m.Float64ObservableCounter("bulwark.bulkhead.queue.time", metric.WithUnit("s"),
		metric.WithDescription("Time requests spent waiting in the bulkhead's queue, in total; divided by bulwark.bulkhead.queue.waits, the mean wait."))
	keep(ferr)

	in.sloSuccess = f64g("bulwark.slo.success_ratio", "1", "Share of requests in the SLO window that succeeded.")
	in.sloBudget = f64g("bulwark.slo.error_budget.remaining", "1", "Share of the SLO window's error budget left; negative when overspent.")
	in.sloBurn = f64g("bulwark.slo.burn_rate", "1", "Error budget burn rate over the long and the short window (1 spends the budget exactly over the window).")

	in.puUsers = i64u("bulwark.per_user_bulkhead.users", "{user}", "Users the per-user bulkhead tracks now.")

	in.retryCalls = i64c("bulwark.retry.calls", "{call}", "Outbound calls made through the endpoint's retry policy.")
	in.retryRetries = i64c("bulwark.retry.retries", "{retry}", "Attempts after the first.")
	in.retryGiveUps = i64c("bulwark.retry.give_ups", "{call}",
		"Calls that stopped retrying, by reason: exhausted (failed on the last allowed attempt), circuit_open (the breaker refused the next attempt), budget_spent, deadline.")

	in.rlAllowed = i64c("bulwark.rate_limit.allowed", "{request}", "Requests the endpoint's rate limit let through.")
	in.rlRate = f64g("bulwark.rate_limit.rate", "{request}/s", "The endpoint's rate limit in force: its configured rate, or this instance's share of it when the limit is shared.")
	in.purlAllowed = i64c("bulwark.per_user_rate_limit.allowed", "{request}", "Requests the per-user rate limit let through, over all users.")
	in.purlUsers = i64u("bulwark.per_user_rate_limit.users", "{user}", "Users the per-user rate limit tracks now.")

	in.alLimit = i64u("bulwark.adaptive_limit.limit", "{request}", "The endpoint's adaptive concurrency limit now.")
	in.alActive = i64u("bulwark.adaptive_limit.active_requests", "{request}", "Requests the adaptive limit admitted that have not ended.")
	in.alQueued = i64u("bulwark.adaptive_limit.queued_requests", "{request}", "Requests waiting in the adaptive limit's queue now.")
	in.alAdmitted = i64c("bulwark.adaptive_limit.admitted", "{request}", "Requests the adaptive limit admitted.")
	in.alBaseline = f64g("bulwark.adaptive_limit.baseline_latency", "s", "The latency the adaptive limit takes as healthy (reported from its first sample window on).")
	in.alRecent = f64g("bulwark.adaptive_limit.recent_latency", "s", "Mean latency of the adaptive limit's last sample window.")
	in.timeouts = i64c("bulwark.timeouts", "{call}", "Calls the breaker let through that ran out of their time (also counted as failures in bulwark.circuit_breaker.calls).")
	in.hedges = i64c("bulwark.hedges", "{attempt}", "Hedged attempts sent: a second attempt of a call that had not answered within the hedge delay.")

	in.faults = i64c("bulwark.fault.injected", "{request}", "Requests a fault experiment delayed (latency), answered with a status (status) or aborted (abort).")
	return errors.Join(errs...)
}

func (in *instruments) observables() []metric.Observable {
	return []metric.Observable{
		in.state, in.calls, in.transitions, in.rejections,
		in.bhActive, in.bhQueued, in.bhRequests, in.bhWaits, in.bhQueueTime,
		in.sloSuccess, in.sloBudget, in.sloBurn, in.puUsers,
		in.retryCalls, in.retryRetries, in.retryGiveUps,
		in.rlAllowed, in.rlRate, in.purlAllowed, in.purlUsers,
		in.alLimit, in.alActive, in.alQueued, in.alAdmitted, in.alBaseline, in.alRecent,
		in.timeouts, in.hedges,
		in.faults,
	}
}

// series is one endpoint's attribute sets, made once so that neither the
// request path nor a collection builds one (transitions aside: few, and
// built at collection).
type series struct {
	endpoint attribute.KeyValue
	// The request path: the duration's one option, the endpoint alone (a
	// second attribute would cost every call as much again in the SDK).
	duration []metric.RecordOption
	// Collection.
	ep              metric.MeasurementOption
	calls           [4]metric.ObserveOption // success, failure, rejected, injected_failure
	state           [len(stateNames)]metric.ObserveOption
	circuitOpen     metric.ObserveOption
	bulkheadFull    metric.ObserveOption
	bulkheadTimeout metric.ObserveOption
	rateLimited     metric.ObserveOption
	concurrency     metric.ObserveOption
	burnLong        metric.ObserveOption
	burnShort       metric.ObserveOption
	giveUps         [len(retryReasons)]metric.ObserveOption
	faults          [3]metric.ObserveOption // latency, status, abort
}

func newSeries(name string) *series {
	ep := keyEndpoint.String(name)
	set := func(kv ...attribute.KeyValue) metric.MeasurementOption {
		return metric.WithAttributeSet(attribute.NewSet(append(kv, ep)...))
	}
	s := &series{endpoint: ep, ep: set()}
	s.duration = []metric.RecordOption{s.ep}
	for i, n := range [...]string{"success", "failure", "rejected", "injected_failure"} {
		s.calls[i] = set(keyOutcome.String(n))
	}
	for i, k := range [...]string{"latency", "status", "abort"} {
		s.faults[i] = set(keyFaultKind.String(k))
	}
	for st, n := range stateNames {
		s.state[st] = set(keyState.String(n))
	}
	s.circuitOpen = set(keyReason.String("circuit_open"))
	s.bulkheadFull = set(keyReason.String("bulkhead_full"))
	s.bulkheadTimeout = set(keyReason.String("bulkhead_timeout"))
	s.rateLimited = set(keyReason.String("rate_limited"))
	s.concurrency = set(keyReason.String("concurrency_limit"))
	s.burnLong = set(keyWindow.String("long"))
	s.burnShort = set(keyWindow.String("short"))
	for i, r := range retryReasons {
		s.giveUps[i] = set(keyRetryReason.String(r))
	}
	return s
}

// userLimit and userRateLimited are the refusals of the Manager's per-user
// bulkhead and rate limit: with no endpoint and, above all, no user.
var (
	userLimit       = metric.WithAttributeSet(attribute.NewSet(keyReason.String("user_limit")))
	userRateLimited = metric.WithAttributeSet(attribute.NewSet(keyReason.String("rate_limited")))
)

func i64(n uint64) int64 { return int64(min(n, 1<<63-1)) }

// collect reads every endpoint's snapshots, as the Prometheus collector
// does at scrape time: the request path pays nothing for these
// instruments.
func (t *Telemetry) collect(_ context.Context, o metric.Observer) error {
	if t.durations != nil {
		// Callbacks run before the SDK reads its histograms: this
		// collection reports every duration recorded before it.
		t.durations.flush()
	}
	in := &t.inst
	for _, e := range t.m.Endpoints() {
		s := t.seriesOf(e.Name())
		if s == nil {
			continue // past the cache's bound: cannot happen below 100,000 endpoints
		}
		b := e.Breaker().Snapshot()
		for st := range s.state {
			var v int64
			if int(b.State) == st {
				v = 1
			}
			o.ObserveInt64(in.state, v, s.state[st])
		}
		o.ObserveInt64(in.calls, b.SuccessfulRequests, s.calls[0])
		o.ObserveInt64(in.calls, b.FailedRequests, s.calls[1])
		o.ObserveInt64(in.calls, b.RejectedRequests, s.calls[2])
		// Only endpoints a fault experiment ran on report these.
		if b.InjectedFailures > 0 {
			o.ObserveInt64(in.calls, b.InjectedFailures, s.calls[3])
		}
		if b.InjectedLatency+b.InjectedStatus+b.InjectedAbort > 0 {
			for i, n := range [...]int64{b.InjectedLatency, b.InjectedStatus, b.InjectedAbort} {
				o.ObserveInt64(in.faults, n, s.faults[i])
			}
		}
		o.ObserveInt64(in.rejections, b.RejectedRequests, s.circuitOpen)
		for from, row := range b.Transitions {
			for to, n := range row {
				if n > 0 {
					o.ObserveInt64(in.transitions, i64(n), metric.WithAttributes(s.endpoint,
						keyPreviousState.String(stateName(events.State(from))), keyState.String(stateName(events.State(to)))))
				}
			}
		}
		if bh := e.Bulkhead(); bh != nil {
			st := bh.Stats()
			o.ObserveInt64(in.bhActive, int64(st.Active), s.ep)
			o.ObserveInt64(in.bhQueued, int64(st.Queued), s.ep)
			o.ObserveInt64(in.bhRequests, i64(st.Total), s.ep)
			o.ObserveInt64(in.rejections, i64(st.Rejected), s.bulkheadFull)
			o.ObserveInt64(in.rejections, i64(st.TimedOut), s.bulkheadTimeout)
			o.ObserveInt64(in.bhWaits, i64(st.QueueTime.Count), s.ep)
			o.ObserveFloat64(in.bhQueueTime, st.QueueTime.Sum.Seconds(), s.ep)
		}
		if slo := e.SLO(); slo != nil {
			st := slo.Status()
			o.ObserveFloat64(in.sloSuccess, st.SuccessRate, s.ep)
			o.ObserveFloat64(in.sloBudget, st.ErrorBudgetRemaining, s.ep)
			o.ObserveFloat64(in.sloBurn, st.LongBurnRate, s.burnLong)
			o.ObserveFloat64(in.sloBurn, st.ShortBurnRate, s.burnShort)
		}
		// Only endpoints called through the Transport use their retry
		// policy; inbound routes would report zeros.
		if st := e.Retry().Stats(); st.Calls > 0 {
			o.ObserveInt64(in.retryCalls, i64(st.Calls), s.ep)
			o.ObserveInt64(in.retryRetries, i64(st.Retries), s.ep)
			for i, n := range [len(retryReasons)]uint64{st.Exhausted, st.AbortedByBreaker, st.BudgetDenied, st.DeadlineGiveUps} {
				o.ObserveInt64(in.retryGiveUps, i64(n), s.giveUps[i])
			}
		}
		if rl := e.RateLimiter(); rl != nil {
			st := rl.Stats()
			o.ObserveInt64(in.rlAllowed, i64(st.Allowed), s.ep)
			o.ObserveInt64(in.rejections, i64(st.Refused), s.rateLimited)
			o.ObserveFloat64(in.rlRate, st.Rate, s.ep)
		}
		if al := e.Adaptive(); al != nil {
			st := al.Stats()
			o.ObserveInt64(in.alLimit, int64(st.Limit), s.ep)
			o.ObserveInt64(in.alActive, int64(st.InFlight), s.ep)
			o.ObserveInt64(in.alQueued, int64(st.Queued), s.ep)
			o.ObserveInt64(in.alAdmitted, i64(st.Admitted), s.ep)
			var shed uint64
			for _, n := range st.Shed {
				shed += n
			}
			o.ObserveInt64(in.rejections, i64(shed), s.concurrency)
			if st.Baseline > 0 { // none before the first sample window
				o.ObserveFloat64(in.alBaseline, st.Baseline.Seconds(), s.ep)
				o.ObserveFloat64(in.alRecent, st.Recent.Seconds(), s.ep)
			}
		}
		o.ObserveInt64(in.timeouts, b.Timeouts, s.ep)
		if n := e.Hedges(); n > 0 || e.Config().Hedge != nil {
			o.ObserveInt64(in.hedges, i64(n), s.ep)
		}
	}
	if p := t.m.PerUser(); p != nil {
		st := p.Stats()
		o.ObserveInt64(in.puUsers, int64(st.Users))
		o.ObserveInt64(in.rejections, i64(st.All.Rejected+st.All.TimedOut+st.TooManyUsers), userLimit)
	}
	if p := t.m.PerUserRateLimiter(); p != nil {
		st := p.Stats()
		o.ObserveInt64(in.purlUsers, int64(st.Users))
		o.ObserveInt64(in.purlAllowed, i64(st.Allowed))
		o.ObserveInt64(in.rejections, i64(st.Refused+st.TooManyUsers), userRateLimited)
	}
	return nil
}
