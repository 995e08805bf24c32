package admin

import (
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
)

// History bounds: the ring of each endpoint covers historyWindow, in at
// most maxHistoryPoints samples; at most maxFaultSpans fault experiments
// are remembered.
const (
	historyWindow    = 15 * time.Minute
	maxHistoryPoints = 900
	maxFaultSpans    = 256
)

// The event types of fault experiments. They are matched by name and read
// from their JSON form, so that any event of these types is understood.
const (
	typeFaultStart = "fault_start"
	typeFaultEnd   = "fault_end"
)

// history keeps, per endpoint, the last historyWindow of samples taken on
// the hub's snapshot tick, and the fault experiments seen on the bus.
// Its memory is bounded: one ring of at most maxHistoryPoints per endpoint
// of the Manager (itself bounded by its MaxEndpoints), and maxFaultSpans
// spans.
type history struct {
	m        *core.Manager
	clock    core.Clock
	interval time.Duration
	points   int
	started  time.Time
	p99Upper []float64 // the duration buckets' upper bounds, in ms

	sampling sync.Mutex // one sample at a time

	mu     sync.Mutex
	series map[string]*series
	last   time.Time // the latest sample; zero before the first
	faults []faultSpan
}

// series is one endpoint's ring and the counts its next sample is taken
// against.
type series struct {
	ring  []point // oldest at start once full
	start int
	prev  counts
}

// counts are the lifetime counters a sample takes deltas of.
type counts struct {
	total, failed, injected int64 // total and failed include the injected failures
	durations               core.HistogramSnapshot
}

// point is one sample: float32 and a byte for the state keep a full ring
// of a thousand endpoints near 30 MB.
type point struct {
	t          int64   // unix ms
	rate       float32 // requests per second over the interval
	failurePct float32 // failed requests, percent of the interval's requests
	p99        float32 // ms, of the calls observed in the interval
	injected   int32   // injected failures in the interval
	state      events.State
}

type faultSpan struct {
	id, endpoint string
	start        time.Time
	end          time.Time // zero while it runs
}

func newHistory(m *core.Manager, interval time.Duration) *history {
	bounds := core.DurationBuckets()
	upper := make([]float64, len(bounds))
	for i, b := range bounds {
		upper[i] = b * 1000
	}
	h := &history{
		m: m, clock: m.Clock(), interval: interval,
		points:   int(min(maxHistoryPoints, max(1, historyWindow/interval))),
		p99Upper: upper,
		series:   make(map[string]*series),
	}
	h.started = h.clock.Now()
	// The endpoints there now have counted calls before the handler came:
	// their first sample takes deltas from here. Later ones start at zero.
	for _, e := range m.Endpoints() {
		c, _ := countsOf(e)
		h.series[e.Name()] = &series{prev: c}
	}
	return h
}

// countsOf reads an endpoint's counters and its breaker's state.
func countsOf(e *core.Endpoint) (counts, events.State) {
	s := e.Breaker().Snapshot()
	return counts{
		total: s.TotalRequests + s.InjectedFailures, failed: s.FailedRequests + s.InjectedFailures,
		injected: s.InjectedFailures, durations: e.Durations(),
	}, s.State
}

// window is the time the rings cover.
func (h *history) window() time.Duration { return time.Duration(h.points) * h.interval }

// sample takes one point of every endpoint of the Manager. It runs on the
// hub's goroutine at every snapshot tick; a clock that has not moved
// since the last sample (a fake one in a test) takes none.
func (h *history) sample() {
	h.sampling.Lock()
	defer h.sampling.Unlock()
	now := h.clock.Now()
	h.mu.Lock()
	last := h.last
	h.mu.Unlock()
	if !last.IsZero() && !now.After(last) {
		return
	}
	dt := h.interval.Seconds()
	if !last.IsZero() {
		dt = now.Sub(last).Seconds()
	}
	eps := h.m.Endpoints()
	type reading struct {
		name  string
		c     counts
		state events.State
	}
	rs := make([]reading, len(eps))
	for i, e := range eps { // outside the lock: snapshots take the breakers' locks
		c, st := countsOf(e)
		rs[i] = reading{e.Name(), c, st}
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	h.last = now
	seen := make(map[string]struct{}, len(rs))
	for _, r := range rs {
		seen[r.name] = struct{}{}
		s := h.series[r.name]
		if s == nil {
			s = &series{} // made since the last sample: its counts start at zero
			h.series[r.name] = s
		}
		s.add(h.points, h.pointOf(now, dt, s.prev, r.c, r.state))
		s.prev = r.c
	}
	for name := range h.series {
		if _, ok := seen[name]; !ok {
			delete(h.series, name) // the Manager no longer has it
		}
	}
	h.pruneFaultsLocked(now)
}

// pointOf is the sample of an interval of dt seconds, from the counts at
// its start and end.
func (h *history) pointOf(now time.Time, dt float64, prev, cur counts, state events.State) point {
	total, failed, injected := cur.total-prev.total, cur.failed-prev.failed, cur.injected-prev.injected
	if total < 0 || failed < 0 || injected < 0 { // counters never go back; if they did, start over
		total, failed, injected = cur.total, cur.failed, cur.injected
	}
	p := point{t: now.UnixMilli(), state: state, injected: int32(min(injected, math.MaxInt32))}
	if dt > 0 {
		p.rate = round32(float64(total)/dt, 1000)
	}
	if total > 0 {
		p.failurePct = round32(100*float64(failed)/float64(total), 100)
	}
	p.p99 = round32(h.quantile(prev.durations, cur.durations, 0.99), 10)
	return p
}

// quantile estimates the q-quantile, in ms, of the durations observed
// between two histogram snapshots, interpolating within a bucket as
// Prometheus's histogram_quantile does; 0 when none were. Durations past
// the last bucket count as its bound.
func (h *history) quantile(prev, cur core.HistogramSnapshot, q float64) float64 {
	n := cur.Count - prev.Count
	if cur.Count < prev.Count || n == 0 {
		return 0
	}
	rank := q * float64(n)
	below, lower := 0.0, 0.0
	for i, upper := range h.p99Upper {
		c := float64(cur.Buckets[i] - prev.Buckets[i])
		if c >= rank { // first reached here, so below < rank
			return lower + (upper-lower)*(rank-below)/(c-below)
		}
		below, lower = c, upper
	}
	return lower
}

func round32(v, scale float64) float32 { return float32(math.Round(v*scale) / scale) }

// add appends p, overwriting the oldest point once the ring is full.
func (s *series) add(capacity int, p point) {
	if len(s.ring) < capacity {
		s.ring = append(s.ring, p)
		return
	}
	s.ring[s.start] = p
	s.start = (s.start + 1) % len(s.ring)
}

// each calls f for every point, oldest first.
func (s *series) each(f func(point)) {
	for i := range s.ring {
		f(s.ring[(s.start+i)%len(s.ring)])
	}
}

// latest returns the newest point.
func (s *series) latest() (point, bool) {
	if len(s.ring) == 0 {
		return point{}, false
	}
	return s.ring[(s.start+len(s.ring)-1)%len(s.ring)], true
}

// faultEvent is what history reads of a fault_start or fault_end event.
type faultEvent struct {
	ID        string    `json:"id"`
	Endpoint  string    `json:"endpoint"`
	Timestamp time.Time `json:"timestamp"`
}

// observe records the start and end of fault experiments from the bus.
func (h *history) observe(e events.Event) {
	typ := e.EventType()
	if typ != typeFaultStart && typ != typeFaultEnd {
		return
	}
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	var f faultEvent
	if json.Unmarshal(b, &f) != nil || f.ID == "" {
		return
	}
	at := f.Timestamp
	if at.IsZero() {
		at = h.clock.Now()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	i := slices.IndexFunc(h.faults, func(s faultSpan) bool { return s.id == f.ID && s.end.IsZero() })
	switch {
	case typ == typeFaultStart && i < 0:
		h.addFaultLocked(faultSpan{id: f.ID, endpoint: f.Endpoint, start: at})
	case typ == typeFaultEnd && i >= 0:
		h.faults[i].end = at
	case typ == typeFaultEnd:
		// Its start came before the handler did (or was lost): it ran at
		// least from then.
		start := h.started
		if at.Before(start) {
			start = at
		}
		h.addFaultLocked(faultSpan{id: f.ID, endpoint: f.Endpoint, start: start, end: at})
	}
}

// addFaultLocked adds a span, forgetting the oldest ended one (or else the
// oldest) past maxFaultSpans.
func (h *history) addFaultLocked(s faultSpan) {
	if len(h.faults) >= maxFaultSpans {
		i := slices.IndexFunc(h.faults, func(s faultSpan) bool { return !s.end.IsZero() })
		h.faults = slices.Delete(h.faults, max(i, 0), max(i, 0)+1)
	}
	h.faults = append(h.faults, s)
}

// pruneFaultsLocked forgets the spans that ended before the window.
func (h *history) pruneFaultsLocked(now time.Time) {
	from := now.Add(-h.window())
	h.faults = slices.DeleteFunc(h.faults, func(s faultSpan) bool { return !s.end.IsZero() && s.end.Before(from) })
}

// historyResponse is the body of GET …/history.
type historyResponse struct {
	IntervalMS    int64                    `json:"interval_ms"`
	WindowSeconds int64                    `json:"window_seconds"`
	Endpoints     map[string]historySeries `json:"endpoints"`
	Faults        []faultSpanJSON          `json:"faults"`
}

// historySeries is one endpoint's samples, oldest first: the i-th entry
// of each list belongs to the i-th time.
type historySeries struct {
	T          []int64        `json:"t"` // unix ms
	Rate       []float32      `json:"rate"`
	FailurePct []float32      `json:"failure_pct"`
	P99MS      []float32      `json:"p99_ms"`
	State      []events.State `json:"state"`
	Injected   []int32        `json:"injected"`
}

type faultSpanJSON struct {
	ID       string `json:"id"`
	Endpoint string `json:"endpoint"`
	Start    int64  `json:"start"`
	End      *int64 `json:"end"` // null while it runs
}

// historyPoint is the newest sample of an endpoint, as the feed's
// snapshot carries it for the page to append to its series.
type historyPoint struct {
	T          int64        `json:"t"`
	Rate       float32      `json:"rate"`
	FailurePct float32      `json:"failure_pct"`
	P99MS      float32      `json:"p99_ms"`
	State      events.State `json:"state"`
	Injected   int32        `json:"injected"`
}

// report returns the history of every endpoint, or of only one when
// endpoint is not empty.
func (h *history) report(endpoint string) historyResponse {
	h.mu.Lock()
	defer h.mu.Unlock()
	res := historyResponse{
		IntervalMS:    h.interval.Milliseconds(),
		WindowSeconds: int64(h.window().Seconds()),
		Endpoints:     make(map[string]historySeries),
		Faults:        []faultSpanJSON{},
	}
	for name, s := range h.series {
		if endpoint != "" && name != endpoint {
			continue
		}
		n := len(s.ring)
		hs := historySeries{
			T: make([]int64, 0, n), Rate: make([]float32, 0, n), FailurePct: make([]float32, 0, n),
			P99MS: make([]float32, 0, n), State: make([]events.State, 0, n), Injected: make([]int32, 0, n),
		}
		s.each(func(p point) {
			hs.T, hs.Rate, hs.FailurePct = append(hs.T, p.t), append(hs.Rate, p.rate), append(hs.FailurePct, p.failurePct)
			hs.P99MS, hs.State, hs.Injected = append(hs.P99MS, p.p99), append(hs.State, p.state), append(hs.Injected, p.injected)
		})
		res.Endpoints[name] = hs
	}
	for _, f := range h.faults {
		if endpoint != "" && f.endpoint != endpoint {
			continue
		}
		j := faultSpanJSON{ID: f.id, Endpoint: f.endpoint, Start: f.start.UnixMilli()}
		if !f.end.IsZero() {
			end := f.end.UnixMilli()
			j.End = &end
		}
		res.Faults = append(res.Faults, j)
	}
	return res
}

// latest returns every endpoint's newest sample.
func (h *history) latest() map[string]historyPoint {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]historyPoint, len(h.series))
	for name, s := range h.series {
		if p, ok := s.latest(); ok {
			out[name] = historyPoint{T: p.t, Rate: p.rate, FailurePct: p.failurePct, P99MS: p.p99, State: p.state, Injected: p.injected}
		}
	}
	return out
}

// known reports whether the history or the Manager knows the endpoint.
func (h *history) known(name string) bool {
	h.mu.Lock()
	_, ok := h.series[name]
	h.mu.Unlock()
	if ok {
		return true
	}
	_, ok = h.m.Lookup(name)
	return ok
}

// serveHistory serves GET …/history[?endpoint=NAME].
func (h *Handler) serveHistory(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("endpoint")
	if _, set := r.URL.Query()["endpoint"]; set {
		if err := core.ValidateEndpoint(name); err != nil {
			writeError(w, http.StatusBadRequest, "endpoint: "+err.Error())
			return
		}
		if !h.history.known(name) {
			writeError(w, http.StatusNotFound, "unknown endpoint "+quoteShort(name))
			return
		}
	}
	writeJSON(w, http.StatusOK, h.history.report(name))
}
