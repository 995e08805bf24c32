package events

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Alert names set in the MetaAlertName metadata of the alerts raised by a
// CircuitBreakerAlertHandler.
const (
	AlertNameBreakerOpen = "CircuitBreakerOpen"
	AlertNameSLOBurn     = "SLOBurnRate"
)

// CircuitBreakerAlertHandler turns breaker transitions and SLO burn events
// read from a Bus into alerts on an AlertManager:
//
//   - a Critical alert when a breaker goes Open or ForcedOpen, resolved (the
//     same alert, same ID) when it goes back to Closed or is Disabled. One alert per endpoint
//     is open at a time: a re-open while the alert fires adds nothing, and a
//     breaker going HalfOpen and back to Open stays one alert.
//   - a Warning alert while an endpoint's SLOBurn reports Burning, resolved
//     when Burning turns false.
//
// Transitions marked Remote (decided by another instance sharing state) never
// fire an alert. A Remote transition to Closed still resolves the alert this
// instance raised, since otherwise it would fire forever when another
// instance closes the breaker.
//
// With a shared-state store (store.RedisStore), give WithClusterAlerts(true):
// two instances can make the same transition at the same moment, each
// seeing a StateChange that is not Remote, and only one of them wins it in
// the store. The handler then fires only on the ClusterStateChange the
// winner publishes (or that an instance cut off from the store publishes
// for its own transitions), so one cluster transition is one alert.
//
// Events the subscription had to drop (a full buffer) are lost to it; see
// Dropped.
type CircuitBreakerAlertHandler struct {
	m       *AlertManager
	bus     *Bus
	buffer  int
	slo     bool
	cluster bool // fire on ClusterStateChange, not StateChange

	mu   sync.Mutex
	sub  *Subscription
	done chan struct{}

	handleMu sync.Mutex        // guards the two maps below
	breaker  map[string]string // endpoint -> active alert ID
	burning  map[string]string // endpoint -> active SLO alert ID
}

// BreakerAlertOption configures a CircuitBreakerAlertHandler.
type BreakerAlertOption func(*CircuitBreakerAlertHandler)

// WithEventBuffer sets the handler's bus subscription buffer (DefaultBuffer
// when n <= 0, at most MaxBuffer).
func WithEventBuffer(n int) BreakerAlertOption {
	return func(h *CircuitBreakerAlertHandler) { h.buffer = n }
}

// WithClusterAlerts makes breaker alerts fire on ClusterStateChange events
// only (on), as they must when a shared-state store is attached; a
// StateChange then only resolves. Off, the default, fires on StateChange
// events that are not Remote and ignores ClusterStateChange.
func WithClusterAlerts(on bool) BreakerAlertOption {
	return func(h *CircuitBreakerAlertHandler) { h.cluster = on }
}

// WithSLOAlerts turns SLO burn alerts on (the default) or off.
func WithSLOAlerts(on bool) BreakerAlertOption {
	return func(h *CircuitBreakerAlertHandler) { h.slo = on }
}

// NewCircuitBreakerAlertHandler returns a handler that raises alerts on m for
// the events published on bus once Start is called.
func NewCircuitBreakerAlertHandler(m *AlertManager, bus *Bus, opts ...BreakerAlertOption) (*CircuitBreakerAlertHandler, error) {
	if m == nil {
		return nil, errors.New("events: NewCircuitBreakerAlertHandler: AlertManager is nil")
	}
	if bus == nil {
		return nil, errors.New("events: NewCircuitBreakerAlertHandler: Bus is nil")
	}
	h := &CircuitBreakerAlertHandler{
		m: m, bus: bus, slo: true,
		breaker: make(map[string]string),
		burning: make(map[string]string),
	}
	for _, o := range opts {
		if o != nil {
			o(h)
		}
	}
	return h, nil
}

// Start subscribes to the bus and handles its events on one goroutine until
// Close. Calling Start again while running does nothing.
func (h *CircuitBreakerAlertHandler) Start() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sub != nil {
		return
	}
	h.sub = h.bus.Subscribe(h.buffer)
	h.done = make(chan struct{})
	go h.run(h.sub, h.done)
}

// Close unsubscribes, handles the events already buffered and waits for the
// goroutine to end. Active alerts stay active. Calling Close again, or
// without Start, does nothing.
func (h *CircuitBreakerAlertHandler) Close() {
	h.mu.Lock()
	sub, done := h.sub, h.done
	h.sub, h.done = nil, nil
	h.mu.Unlock()
	if sub == nil {
		return
	}
	sub.Close()
	<-done
}

// Dropped returns how many events the current subscription lost because
// its buffer was full (0 when not started).
func (h *CircuitBreakerAlertHandler) Dropped() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sub == nil {
		return 0
	}
	return h.sub.Dropped()
}

func (h *CircuitBreakerAlertHandler) run(sub *Subscription, done chan struct{}) {
	defer close(done)
	for e := range sub.C() {
		h.Handle(e)
	}
}

// Handle processes one event as if it had arrived on the bus. Start calls
// it for every event; it is exported for feeding events by other means
// (an OnStateChange callback, say). Other event types are ignored.
func (h *CircuitBreakerAlertHandler) Handle(e Event) {
	h.handleMu.Lock()
	defer h.handleMu.Unlock()
	switch ev := e.(type) {
	case StateChange:
		h.stateChange(ev)
	case *StateChange:
		if ev != nil {
			h.stateChange(*ev)
		}
	case ClusterStateChange:
		h.clusterStateChange(ev)
	case *ClusterStateChange:
		if ev != nil {
			h.clusterStateChange(*ev)
		}
	case SLOBurn:
		h.sloBurn(ev)
	case *SLOBurn:
		if ev != nil {
			h.sloBurn(*ev)
		}
	}
}

func (h *CircuitBreakerAlertHandler) stateChange(sc StateChange) {
	switch sc.NewState {
	case Open, ForcedOpen:
		if sc.Remote || h.cluster {
			return
		}
		h.fire(sc, nil)
	case Closed, Disabled: // a disabled breaker rejects nothing: the outage alert is over
		h.resolve(sc.Endpoint, sc.Timestamp)
	}
}

func (h *CircuitBreakerAlertHandler) clusterStateChange(c ClusterStateChange) {
	if !h.cluster {
		return
	}
	switch c.NewState {
	case Open, ForcedOpen:
		h.fire(c.Change(), map[string]string{
			"version":  strconv.FormatUint(c.Version, 10),
			"instance": c.Instance,
			"local":    strconv.FormatBool(c.Local),
		})
	case Closed, Disabled:
		h.resolve(c.Endpoint, c.Timestamp)
	}
}

// fire raises the endpoint's open alert unless one is active; extra is
// added to its metadata.
func (h *CircuitBreakerAlertHandler) fire(sc StateChange, extra map[string]string) {
	if id, ok := h.breaker[sc.Endpoint]; ok {
		if h.m.isActive(id) {
			return
		}
	}
	verb, why := "has opened", sc.Reason
	if sc.NewState == ForcedOpen {
		// The breaker's reason already starts with "forced open: ".
		verb, why = "has been forced open", strings.TrimPrefix(why, "forced open: ")
	}
	ts := sc.Timestamp
	md := map[string]string{
		MetaAlertName: AlertNameBreakerOpen,
		MetaEndpoint:  sc.Endpoint,
		MetaReason:    sc.Reason,
		MetaTimestamp: formatTime(ts),
		"old_state":   sc.OldState.String(),
		"new_state":   sc.NewState.String(),
	}
	for k, v := range extra {
		md[k] = v
	}
	a := h.m.Fire(Alert{
		Timestamp: ts,
		Severity:  Critical,
		Type: AlertType{
			Kind:     AlertKindCustom,
			Message:  fmt.Sprintf("Circuit breaker opened for %s", sc.Endpoint),
			Metadata: md,
		},
		Message: fmt.Sprintf("Circuit breaker for endpoint '%s' %s: %s", sc.Endpoint, verb, reasonOr(why)),
	})
	h.breaker[sc.Endpoint] = a.ID
}

// resolve resolves the endpoint's open alert, if this handler raised one.
func (h *CircuitBreakerAlertHandler) resolve(endpoint string, at time.Time) {
	if id, ok := h.breaker[endpoint]; ok {
		delete(h.breaker, endpoint)
		h.m.ResolveAt(id, at)
	}
}

func (h *CircuitBreakerAlertHandler) sloBurn(b SLOBurn) {
	if !h.slo {
		return
	}
	id, firing := h.burning[b.Endpoint]
	if firing {
		firing = h.m.isActive(id)
	}
	switch {
	case b.Burning && !firing:
		a := h.m.Fire(Alert{
			Timestamp: b.Timestamp,
			Severity:  Warning,
			Type: AlertType{
				Kind:    AlertKindCustom,
				Message: fmt.Sprintf("Error budget burning fast for %s", b.Endpoint),
				Metadata: map[string]string{
					MetaAlertName:            AlertNameSLOBurn,
					MetaEndpoint:             b.Endpoint,
					MetaReason:               b.Reason,
					MetaTimestamp:            formatTime(b.Timestamp),
					"success_rate":           strconv.FormatFloat(b.SuccessRate, 'f', -1, 64),
					"error_budget_remaining": strconv.FormatFloat(b.BudgetRemaining, 'f', -1, 64),
					"long_burn_rate":         strconv.FormatFloat(b.LongBurnRate, 'f', -1, 64),
					"short_burn_rate":        strconv.FormatFloat(b.ShortBurnRate, 'f', -1, 64),
				},
			},
			Message: fmt.Sprintf("SLO error budget for endpoint '%s' is burning too fast: %s", b.Endpoint, reasonOr(b.Reason)),
		})
		h.burning[b.Endpoint] = a.ID
	case !b.Burning && firing:
		delete(h.burning, b.Endpoint)
		h.m.ResolveAt(id, b.Timestamp)
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
