package alert

import (
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/bulwark-go/bulwark/events"
)

// follow turns the Bus's events into alerts until the subscription ends
// (Close) or Close gives up on what is left.
func (m *Manager) follow() {
	defer close(m.done)
	c := m.sub.C()
	for {
		select {
		case <-m.stop: // checked first: Close gave up on the rest
			return
		default:
		}
		select {
		case e, ok := <-c:
			if !ok {
				return
			}
			m.handle(e)
			m.reportLost()
		case <-m.stop:
			return
		}
	}
}

// reportLost logs the events the subscription dropped since last time: an
// Open lost is an alert never raised.
func (m *Manager) reportLost() {
	if n := m.sub.Dropped(); n > m.lost {
		m.log.Warn("alert: bus events lost because the Manager's buffer was full; alerts may be missing",
			"lost", n-m.lost, "total_lost", n)
		m.lost = n
	}
}

// handle processes one event; other event types are ignored.
func (m *Manager) handle(e events.Event) {
	switch ev := e.(type) {
	case events.StateChange:
		m.stateChange(ev)
	case *events.StateChange:
		if ev != nil {
			m.stateChange(*ev)
		}
	case events.ClusterStateChange:
		m.clusterStateChange(ev)
	case *events.ClusterStateChange:
		if ev != nil {
			m.clusterStateChange(*ev)
		}
	case events.SLOBurn:
		m.sloBurn(ev)
	case *events.SLOBurn:
		if ev != nil {
			m.sloBurn(*ev)
		}
	case events.FaultChange:
		m.faultChange(ev)
	case *events.FaultChange:
		if ev != nil {
			m.faultChange(*ev)
		}
	}
}

func (m *Manager) stateChange(sc events.StateChange) {
	switch sc.NewState {
	case events.Open, events.ForcedOpen, events.HalfOpen:
		switch {
		case sc.Restored:
			// Not news: the alert fired before the restart. HalfOpen
			// counts, since a breaker gets there only from Open and its
			// alert fires until it closes.
			m.fireBreaker(sc, nil, false)
		case sc.NewState == events.HalfOpen, sc.Remote, m.cluster:
		default:
			m.fireBreaker(sc, nil, true)
		}
	case events.Closed, events.Disabled: // a disabled breaker rejects nothing: the outage alert is over
		m.resolveBreaker(sc.Endpoint, sc.Timestamp)
	}
}

func (m *Manager) clusterStateChange(c events.ClusterStateChange) {
	if !m.cluster {
		return
	}
	switch c.NewState {
	case events.Open, events.ForcedOpen:
		sc := events.StateChange{Endpoint: c.Endpoint, OldState: c.OldState, NewState: c.NewState, Timestamp: c.Timestamp, Reason: c.Reason}
		m.fireBreaker(sc, map[string]string{
			"version":  strconv.FormatUint(c.Version, 10),
			"instance": c.Instance,
			"local":    strconv.FormatBool(c.Local),
		}, true)
	case events.Closed, events.Disabled:
		m.resolveBreaker(c.Endpoint, c.Timestamp)
	}
}

// fireBreaker raises the endpoint's open alert unless one is active; extra
// is added to its metadata. Without notify the alert is only recorded.
func (m *Manager) fireBreaker(sc events.StateChange, extra map[string]string, notify bool) {
	if id, ok := m.breaker[sc.Endpoint]; ok && m.isActive(id) {
		return
	}
	ts := sc.Timestamp
	if ts.IsZero() {
		ts = m.clock.Now()
	}
	why := sc.Reason
	if sc.Restored {
		why = strings.TrimPrefix(why, "restored: ")
	}
	verb := "has opened"
	if sc.NewState == events.ForcedOpen {
		// The breaker's reason already starts with "forced open: ".
		verb, why = "has been forced open", strings.TrimPrefix(why, "forced open: ")
	}
	md := map[string]string{
		MetaAlertName: nameBreakerOpen,
		MetaEndpoint:  sc.Endpoint,
		"reason":      sc.Reason,
		"timestamp":   formatTime(ts),
		"old_state":   sc.OldState.String(),
		"new_state":   sc.NewState.String(),
	}
	maps.Copy(md, extra)
	a := m.fire(Alert{
		ID:        breakerID(sc.Endpoint, ts),
		Timestamp: ts,
		Severity:  Critical,
		Type: Type{
			Kind:     kindCustom,
			Message:  fmt.Sprintf("Circuit breaker opened for %s", sc.Endpoint),
			Metadata: md,
		},
		Message: fmt.Sprintf("Circuit breaker for endpoint '%s' %s: %s", sc.Endpoint, verb, reasonOr(why)),
	}, notify)
	m.breaker[sc.Endpoint] = a.ID
}

// resolveBreaker resolves the endpoint's open alert, if this Manager
// raised or restored one.
func (m *Manager) resolveBreaker(endpoint string, at time.Time) {
	if id, ok := m.breaker[endpoint]; ok {
		delete(m.breaker, endpoint)
		m.resolve(id, at)
	}
}

func (m *Manager) sloBurn(b events.SLOBurn) {
	if !m.slo {
		return
	}
	id, firing := m.burning[b.Endpoint]
	if firing {
		firing = m.isActive(id)
	}
	switch {
	case b.Burning && !firing:
		a := m.Fire(Alert{
			Timestamp: b.Timestamp,
			Severity:  Warning,
			Type: Type{
				Kind:    kindCustom,
				Message: fmt.Sprintf("Error budget burning fast for %s", b.Endpoint),
				Metadata: map[string]string{
					MetaAlertName:            nameSLOBurn,
					MetaEndpoint:             b.Endpoint,
					"reason":                 b.Reason,
					"timestamp":              formatTime(b.Timestamp),
					"success_rate":           strconv.FormatFloat(b.SuccessRate, 'f', -1, 64),
					"error_budget_remaining": strconv.FormatFloat(b.BudgetRemaining, 'f', -1, 64),
					"long_burn_rate":         strconv.FormatFloat(b.LongBurnRate, 'f', -1, 64),
					"short_burn_rate":        strconv.FormatFloat(b.ShortBurnRate, 'f', -1, 64),
				},
			},
			Message: fmt.Sprintf("SLO error budget for endpoint '%s' is burning too fast: %s", b.Endpoint, reasonOr(b.Reason)),
		})
		m.burning[b.Endpoint] = a.ID
	case !b.Burning && firing:
		delete(m.burning, b.Endpoint)
		m.resolve(id, b.Timestamp)
	case !b.Burning:
		delete(m.burning, b.Endpoint)
	}
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func reasonOr(r string) string {
	if r == "" {
		return "no reason given"
	}
	return r
}

// faultChange raises an Info alert when a fault experiment of this process
// starts and resolves it when the experiment ends. An experiment another
// instance started (Origin set) raises nothing here: its own instance
// alerts.
func (m *Manager) faultChange(f events.FaultChange) {
	if !m.faults || f.Origin != "" {
		return
	}
	id := faultID(f.ID)
	switch f.Type {
	case events.TypeFaultStart:
		ts := f.Timestamp
		if ts.IsZero() {
			ts = m.clock.Now()
		}
		m.Fire(Alert{
			ID:        id,
			Timestamp: ts,
			Severity:  Info,
			Type: Type{
				Kind:    kindCustom,
				Message: fmt.Sprintf("Fault injection started on %s", f.Endpoint),
				Metadata: map[string]string{
					MetaAlertName:    nameFault,
					MetaEndpoint:     f.Endpoint,
					"fault_id":       f.ID,
					"reason":         f.Reason,
					"timestamp":      formatTime(ts),
					"percent":        strconv.FormatFloat(f.Percent, 'f', -1, 64),
					"latency_ms":     strconv.FormatInt(f.LatencyMS, 10),
					"latency_max_ms": strconv.FormatInt(f.LatencyMaxMS, 10),
					"status":         strconv.Itoa(f.Status),
					"abort":          strconv.FormatBool(f.Abort),
					"ends":           formatTime(f.Ends),
				},
			},
			Message: fmt.Sprintf("Fault injection on endpoint '%s': %s for %s%% of calls until %s: %s",
				f.Endpoint, faultWhat(f), strconv.FormatFloat(f.Percent, 'f', -1, 64), formatTime(f.Ends), reasonOr(f.Reason)),
		})
	case events.TypeFaultEnd:
		m.resolve(id, f.Timestamp)
	}
}

// faultWhat says what an experiment does to the calls it chooses.
func faultWhat(f events.FaultChange) string {
	var parts []string
	switch {
	case f.LatencyMaxMS > f.LatencyMS:
		parts = append(parts, fmt.Sprintf("%d to %dms of delay", f.LatencyMS, f.LatencyMaxMS))
	case f.LatencyMS > 0:
		parts = append(parts, fmt.Sprintf("%dms of delay", f.LatencyMS))
	}
	switch {
	case f.Abort:
		parts = append(parts, "an aborted connection")
	case f.Status != 0:
		parts = append(parts, fmt.Sprintf("status %d", f.Status))
	}
	if len(parts) == 0 {
		return "a fault"
	}
	return strings.Join(parts, " then ")
}
