package core

import (
	"cmp"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/bulwark-go/bulwark/events"
	"github.com/bulwark-go/bulwark/internal/check"
)

// ErrFaultsDisabled is returned by StartFault while ManagerConfig.Faults is
// nil: fault injection is off.
var ErrFaultsDisabled = errors.New("fault injection is off")

// Fault is one fault-injection experiment on an endpoint: for a share of
// the calls that match its filters, the HTTP middleware and Transport add a
// delay, answer with a status in place of the handler or the upstream, or
// abort the call. Start one with Manager.StartFault; it ends by itself once
// its Duration has passed.
type Fault struct {
	// ID names the experiment: 1 to 64 letters, digits, '.', '_' or '-'.
	// StartFault sets a random one (16 hex digits) when it is empty.
	ID string
	// Endpoint is the endpoint it runs on: an inbound route pattern or an
	// outbound dependency's name. Required.
	Endpoint string
	// Percent is the share of the matching calls that get the fault: more
	// than 0 and at most 100.
	Percent float64
	// Latency is added before the call; with LatencyMax, the low end of a
	// uniform range. 0 (none) to 1h.
	Latency time.Duration
	// LatencyMax, when set, is the high end of the range the delay is
	// drawn from: Latency to 1h.
	LatencyMax time.Duration
	// Status, when set (400 to 599), is the answer: inbound in place of the
	// handler's, outbound in place of the upstream's.
	Status int
	// Abort, inbound, closes the connection with no answer; outbound, fails
	// the call with an error. Status and Abort exclude each other; at least
	// one of Latency, LatencyMax, Status and Abort is set.
	Abort bool
	// Header, when set, limits the experiment to calls whose request
	// carries it: with HeaderValue set, with that value, else with any.
	// A header name of at most 256 bytes.
	Header string
	// HeaderValue is the value Header must have, at most 1,024 bytes of
	// printable text; it needs Header.
	HeaderValue string
	// User, when set, limits the experiment to the calls of this user, as
	// the inbound middleware's UserKey names them (outbound calls have no
	// user and never match). At most 256 bytes of UTF-8.
	User string
	// Duration is how long the experiment runs: 0 means
	// FaultLimits.DefaultDuration; at most FaultLimits.MaxDuration.
	Duration time.Duration
	// Ends is when the experiment ends. StartFault sets it to the start
	// plus Duration; an experiment started with Ends set keeps it (a store
	// replicating another instance's experiment sets it), which must then
	// lie ahead, within MaxDuration.
	Ends time.Time
	// Reason says why the experiment runs, for the events, alerts and the
	// admin status: at most 256 bytes of printable text.
	Reason string
	// Origin is the instance that started the experiment when it is shared
	// through a store; empty means this process. At most 256 bytes of
	// printable text.
	Origin string
	// Injected is how many calls got the fault in this process, as
	// Faults and StopFault report it; StartFault ignores it.
	Injected int64
}

// FaultLimits turns fault injection on and bounds it (ManagerConfig.Faults;
// nil leaves it off, and StartFault then fails with ErrFaultsDisabled).
type FaultLimits struct {
	// DefaultDuration is how long an experiment without a Duration runs.
	// Default 10m, or MaxDuration when that is shorter; 1ms to MaxDuration.
	DefaultDuration time.Duration
	// MaxDuration bounds an experiment's Duration. Default 1h; 1ms to 24h.
	MaxDuration time.Duration
	// MaxFaults bounds the experiments running at once. Default 64; 1 to
	// 10,000.
	MaxFaults int
	// Experiments are started by NewManager, in order, each as StartFault
	// would start it: their events are published on ManagerConfig.Bus
	// before NewManager returns. Every bad field of every experiment is
	// reported, named like "core.ManagerConfig.Faults.Experiments[0].Percent".
	Experiments []Fault
}

// Limits of a Fault's fields.
const (
	maxFaultIDLen    = 64
	maxFaultLatency  = time.Hour
	maxFaultText     = 256 // Reason, Origin, Header
	maxFaultValueLen = 1024
)

// The kinds of fault a call can get, for Snapshot's counts.
const (
	faultLatency = iota
	faultStatus
	faultAbort
	faultKinds
)

// faultSet is the Manager's running experiments. Every change is made
// under mu, which also orders the events; the request path reads only each
// endpoint's list, through one atomic load.
type faultSet struct {
	limits *FaultLimits // normalized, without Experiments; nil when off

	mu      sync.Mutex
	running map[string]*faultRun
	seq     uint64 // orders an endpoint's experiments by start
	// The timer fires at the earliest end (timerAt, a clock Nanotime) while
	// an experiment runs; the watcher goroutine waits on it, and on kick
	// when the timer is replaced. It runs only while timer is set.
	timer    Timer
	timerAt  int64
	kick     chan struct{}
	watching bool
}

// faultRun is one running experiment.
type faultRun struct {
	f        Fault // as started; Injected unset
	ep       *Endpoint
	seq      uint64
	end      int64  // clock Nanotime of f.Ends
	all      bool   // Percent is 100
	cut      uint64 // else a call is chosen when rand.Uint64() < cut
	injected atomic.Int64
}

// newFaultSet normalizes lim into c; nil lim leaves fault injection off.
// It returns the experiments to start, normalized.
func newFaultSet(lim *FaultLimits, c *check.Checker, now time.Time) (faultSet, []Fault) {
	if lim == nil {
		return faultSet{}, nil
	}
	l := *lim
	l.Experiments = nil
	maxGiven := l.MaxDuration != 0
	c.Duration("MaxDuration", &l.MaxDuration, time.Hour, time.Millisecond, 24*time.Hour)
	def := 10 * time.Minute
	if maxGiven && l.MaxDuration < def {
		def = l.MaxDuration
	}
	c.Duration("DefaultDuration", &l.DefaultDuration, def, time.Millisecond, 24*time.Hour)
	if maxOK := l.MaxDuration >= time.Millisecond && l.MaxDuration <= 24*time.Hour; maxOK && l.DefaultDuration > l.MaxDuration {
		c.Fail("DefaultDuration", l.DefaultDuration, fmt.Sprintf("must be at most MaxDuration (%s)", l.MaxDuration))
	}
	c.Int("MaxFaults", &l.MaxFaults, 64, 1, 10_000)
	if n := len(lim.Experiments); n > l.MaxFaults && l.MaxFaults >= 1 {
		c.Fail("Experiments", n, fmt.Sprintf("at most MaxFaults (%d) experiments can run at once", l.MaxFaults))
	}
	exps := make([]Fault, len(lim.Experiments))
	ids := make(map[string]bool, len(exps))
	for i, f := range lim.Experiments {
		ec := c.Sub(fmt.Sprintf("Experiments[%d]", i))
		exps[i] = f.normalize(ec, &l, now)
		if id := exps[i].ID; f.ID != "" && ids[id] {
			ec.Fail("ID", id, "is the ID of an earlier experiment")
		}
		ids[exps[i].ID] = true
	}
	return faultSet{limits: &l, running: map[string]*faultRun{}, kick: make(chan struct{}, 1)}, exps
}

// normalize checks f into c (named c's prefix plus the field) and returns
// it with its ID, Duration and Ends set.
func (f Fault) normalize(c *check.Checker, l *FaultLimits, now time.Time) Fault {
	f.Injected = 0
	switch {
	case f.ID == "":
		f.ID = newFaultID()
	case !validFaultID(f.ID):
		c.Fail("ID", f.ID, fmt.Sprintf("must be 1 to %d letters, digits, '.', '_' or '-'", maxFaultIDLen))
	}
	if ValidateEndpoint(f.Endpoint) != nil {
		c.Fail("Endpoint", f.Endpoint, fmt.Sprintf("is required: 1 to %d bytes of printable UTF-8, such as \"GET /users/{id}\"", maxEndpointLen))
	}
	if !(f.Percent > 0 && f.Percent <= 100) {
		c.Fail("Percent", f.Percent, "must be more than 0 and at most 100")
	}
	if f.Latency < 0 || f.Latency > maxFaultLatency {
		c.Fail("Latency", f.Latency, fmt.Sprintf("must be between 0 and %s", maxFaultLatency))
	}
	if f.LatencyMax != 0 && (f.LatencyMax < f.Latency || f.LatencyMax > maxFaultLatency) {
		c.Fail("LatencyMax", f.LatencyMax, fmt.Sprintf("must be 0 or between Latency (%s) and %s", max(f.Latency, 0), maxFaultLatency))
	}
	switch {
	case f.Status != 0 && (f.Status < 400 || f.Status > 599):
		c.Fail("Status", f.Status, "must be 0 (none) or an error status, 400 to 599")
	case f.Status != 0 && f.Abort:
		c.Fail("Abort", true, "cannot be set with Status: an aborted call gets no answer")
	case f.Status == 0 && !f.Abort && f.Latency == 0 && f.LatencyMax == 0:
		c.Fail("Status", 0, "at least one of Latency, LatencyMax, Status and Abort must be set, or the experiment does nothing")
	}
	switch {
	case f.Header == "" && f.HeaderValue != "":
		c.Fail("HeaderValue", f.HeaderValue, "needs Header")
	case f.Header != "" && !validHeaderName(f.Header):
		c.Fail("Header", f.Header, fmt.Sprintf("must be a header name of at most %d bytes: letters, digits and !#$%%&'*+-.^_`|~", maxFaultText))
	}
	if len(f.HeaderValue) > maxFaultValueLen || !check.Printable(f.HeaderValue) {
		c.Fail("HeaderValue", f.HeaderValue, fmt.Sprintf("must be at most %d bytes of printable text", maxFaultValueLen))
	}
	if len(f.User) > maxUserIDLen || !utf8.ValidString(f.User) {
		c.Fail("User", f.User, fmt.Sprintf("must be at most %d bytes of UTF-8", maxUserIDLen))
	}
	c.Duration("Duration", &f.Duration, l.DefaultDuration, time.Millisecond, l.MaxDuration)
	if f.Ends.IsZero() {
		f.Ends = now.Add(f.Duration)
	} else if d := f.Ends.Sub(now); d <= 0 || d > l.MaxDuration {
		c.Fail("Ends", f.Ends, fmt.Sprintf("must lie ahead, within MaxDuration (%s)", l.MaxDuration))
	}
	f.Ends = f.Ends.UTC()
	for _, t := range []struct{ name, v string }{{"Reason", f.Reason}, {"Origin", f.Origin}} {
		if len(t.v) > maxFaultText || !check.Printable(t.v) {
			c.Fail(t.name, t.v, fmt.Sprintf("must be at most %d bytes of printable text", maxFaultText))
		}
	}
	return f
}

// newFaultID returns 16 random hex digits: 64 bits, so that instances
// sharing experiments need not agree on IDs.
func newFaultID() string {
	var b [8]byte
	_, _ = crand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

func validFaultID(id string) bool {
	if len(id) > maxFaultIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return id != ""
}

// validHeaderName reports whether s is an HTTP field name (RFC 9110's
// token).
func validHeaderName(s string) bool {
	if len(s) > maxFaultText {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return s != ""
}

// StartFault starts the experiment f on its endpoint (made if it does not
// exist yet) and publishes an events.FaultChange of type
// events.TypeFaultStart on the Manager's bus. It returns f as started, with
// its ID, Duration and Ends set. It fails with ErrFaultsDisabled while
// fault injection is off, with every bad field of f as *ConfigError values
// (named "core.Fault.…"; a running experiment's ID is one, as is one
// experiment more than FaultLimits.MaxFaults, named
// "core.ManagerConfig.Faults.MaxFaults"), or with the error of
// Manager.Endpoint.
func (m *Manager) StartFault(f Fault) (Fault, error) {
	fs := &m.faults
	if fs.limits == nil {
		return Fault{}, ErrFaultsDisabled
	}
	c := newChecker("core.Fault.")
	f = f.normalize(c, fs.limits, m.clock.Now())
	if err := c.Err(); err != nil {
		return Fault{}, err
	}
	return m.startFault(f)
}

// startFault starts a normalized experiment.
func (m *Manager) startFault(f Fault) (Fault, error) {
	e, err := m.Endpoint(f.Endpoint)
	if err != nil {
		return Fault{}, fmt.Errorf("core: fault experiment %s: %w", f.ID, err)
	}
	fs := &m.faults
	fs.mu.Lock()
	defer fs.mu.Unlock()
	m.expireFaultsLocked() // what has ended neither counts nor holds its ID
	switch {
	case fs.running[f.ID] != nil:
		return Fault{}, &ConfigError{Field: "core.Fault.ID", Value: f.ID, Rule: "is the ID of a running experiment"}
	case len(fs.running) >= fs.limits.MaxFaults:
		return Fault{}, &ConfigError{Field: "core.ManagerConfig.Faults.MaxFaults", Value: fs.limits.MaxFaults,
			Rule: "experiments are running already, the most allowed at once: stop one first"}
	}
	now, nano := m.clock.Now(), m.clock.Nanotime()
	fs.seq++
	r := &faultRun{f: f, ep: e, seq: fs.seq, end: nano + int64(f.Ends.Sub(now))}
	if f.Percent >= 100 {
		r.all = true
	} else {
		r.cut = uint64(f.Percent / 100 * math.MaxUint64)
	}
	fs.running[f.ID] = r
	m.listFaultsLocked(e)
	m.bus.Publish(r.event(events.TypeFaultStart, f.Reason, now))
	m.armFaultsLocked(nano)
	return f, nil
}

// StopFault ends the experiment id before its time and publishes its
// events.FaultChange of type events.TypeFaultEnd, with reason "stopped". It
// returns the experiment, with the calls it injected, and reports whether
// it was running.
func (m *Manager) StopFault(id string) (Fault, bool) {
	fs := &m.faults
	if fs.limits == nil {
		return Fault{}, false
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	r := fs.running[id]
	if r == nil {
		return Fault{}, false
	}
	f := m.endFaultLocked(r, "stopped", m.clock.Now())
	m.armFaultsLocked(m.clock.Nanotime())
	return f, true
}

// Faults returns the running experiments, by Ends then ID, each with the
// calls it injected so far. Experiments whose time is up are ended first,
// each with its event (reason "expired"), even when the timer that ends
// them has not fired yet.
func (m *Manager) Faults() []Fault {
	fs := &m.faults
	if fs.limits == nil {
		return nil
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	m.expireFaultsLocked()
	out := make([]Fault, 0, len(fs.running))
	for _, r := range fs.running {
		f := r.f
		f.Injected = r.injected.Load()
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b Fault) int {
		return cmp.Or(a.Ends.Compare(b.Ends), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// FaultLimits returns the limits fault injection runs under, defaults
// filled in (without Experiments), and reports whether it is on.
func (m *Manager) FaultLimits() (FaultLimits, bool) {
	if l := m.faults.limits; l != nil {
		return *l, true
	}
	return FaultLimits{}, false
}

// endFaultLocked ends r and publishes its end; fs.mu is held.
func (m *Manager) endFaultLocked(r *faultRun, reason string, now time.Time) Fault {
	delete(m.faults.running, r.f.ID)
	m.listFaultsLocked(r.ep)
	f := r.f
	f.Injected = r.injected.Load()
	ev := r.event(events.TypeFaultEnd, reason, now)
	ev.Injected = f.Injected
	m.bus.Publish(ev)
	return f
}

// expireFaultsLocked ends every experiment whose time is up, in the order
// they end; fs.mu is held.
func (m *Manager) expireFaultsLocked() {
	fs := &m.faults
	nano := m.clock.Nanotime()
	var due []*faultRun
	for _, r := range fs.running {
		if r.end <= nano {
			due = append(due, r)
		}
	}
	slices.SortFunc(due, func(a, b *faultRun) int { return cmp.Or(cmp.Compare(a.end, b.end), cmp.Compare(a.f.ID, b.f.ID)) })
	now := m.clock.Now()
	for _, r := range due {
		m.endFaultLocked(r, "expired", now)
	}
	m.armFaultsLocked(nano)
}

// listFaultsLocked puts e's running experiments, in the order they
// started, where its calls read them; fs.mu is held.
func (m *Manager) listFaultsLocked(e *Endpoint) {
	var runs []*faultRun
	for _, r := range m.faults.running {
		if r.ep == e {
			runs = append(runs, r)
		}
	}
	if len(runs) == 0 {
		e.faults.Store(nil)
		return
	}
	slices.SortFunc(runs, func(a, b *faultRun) int { return cmp.Compare(a.seq, b.seq) })
	e.faults.Store(&runs)
}

// armFaultsLocked sets the timer to the earliest end, or stops it when no
// experiment runs, and starts the watcher when it is needed; fs.mu is held.
func (m *Manager) armFaultsLocked(nano int64) {
	fs := &m.faults
	earliest, any := int64(math.MaxInt64), false
	for _, r := range fs.running {
		earliest, any = min(earliest, r.end), true
	}
	switch {
	case !any:
		if fs.timer != nil {
			fs.timer.Stop()
			fs.timer = nil
			fs.wake()
		}
		return
	case fs.timer != nil && fs.timerAt == earliest:
		return
	case fs.timer != nil:
		fs.timer.Stop()
		fs.wake()
	}
	fs.timer, fs.timerAt = m.clock.NewTimer(time.Duration(max(earliest-nano, 0))), earliest
	if !fs.watching {
		fs.watching = true
		go m.watchFaults()
	}
}

// wake tells the watcher its timer was replaced.
func (fs *faultSet) wake() {
	select {
	case fs.kick <- struct{}{}:
	default:
	}
}

// watchFaults ends experiments whose time is up when no call or listing
// does it first, so that each end is published on time even with no
// traffic. It runs while an experiment does.
func (m *Manager) watchFaults() {
	fs := &m.faults
	for {
		fs.mu.Lock()
		t := fs.timer
		if t == nil {
			fs.watching = false
			fs.mu.Unlock()
			return
		}
		select { // a kick for an earlier timer is stale now
		case <-fs.kick:
		default:
		}
		fs.mu.Unlock()
		select {
		case <-t.C():
		case <-fs.kick:
		}
		fs.mu.Lock()
		m.expireFaultsLocked()
		fs.mu.Unlock()
	}
}

// event is r's FaultChange of type typ.
func (r *faultRun) event(typ, reason string, now time.Time) events.FaultChange {
	f := &r.f
	return events.FaultChange{
		Type: typ, ID: f.ID, Endpoint: f.Endpoint, Percent: f.Percent,
		LatencyMS: f.Latency.Milliseconds(), LatencyMaxMS: f.LatencyMax.Milliseconds(),
		Status: f.Status, Abort: f.Abort, Ends: f.Ends, Reason: reason, Origin: f.Origin,
		Timestamp: now.UTC(),
	}
}

// Inject reports the experiment that gives this call a fault, if any: the
// first running on the endpoint (in the order they started) whose filters
// the call matches and whose Percent draw chooses it, and the delay drawn
// for the call (Latency, or within Latency and LatencyMax). header reads a
// request header and user returns the call's user; either may be nil, and
// neither is called unless an experiment filters on it. The Fault is the
// running experiment's own: read it, never change it (its Injected is
// not kept up to date; Faults reports that).
//
// The HTTP middleware and Transport call it for every request, before any
// other policy; with no experiment on the endpoint it costs one atomic
// load. Inject counts the call (Fault.Injected and the Snapshot's Injected
// counts) and records a status or an abort in the endpoint's breaker as a
// call without a Permit: a status of 500 or more and an abort as a
// failure, counted in Snapshot.InjectedFailures; a lower status as a
// success (never as a half-open probe). The caller adds the delay and
// gives the answer.
func (e *Endpoint) Inject(header func(string) string, user func() string) (f *Fault, delay time.Duration) {
	// Kept small enough to be inlined: the check is then the load alone.
	if e.faults.Load() != nil {
		f, delay = e.inject(header, user)
	}
	return
}

func (e *Endpoint) inject(header func(string) string, user func() string) (*Fault, time.Duration) {
	runs := e.faults.Load()
	if runs == nil {
		return nil, 0
	}
	now := e.m.clock.Nanotime()
	who, asked := "", false
	for _, r := range *runs {
		f := &r.f
		if now >= r.end {
			continue // ending: the watcher or the next listing publishes it
		}
		if f.Header != "" {
			if header == nil {
				continue
			}
			if v := header(f.Header); v == "" || f.HeaderValue != "" && v != f.HeaderValue {
				continue
			}
		}
		if f.User != "" {
			if !asked && user != nil {
				who = user()
			}
			asked = true
			if who != f.User {
				continue
			}
		}
		if !r.all && rand.Uint64() >= r.cut {
			continue
		}
		d := f.Latency
		if f.LatencyMax > f.Latency {
			d += rand.N(f.LatencyMax - f.Latency)
		}
		r.injected.Add(1)
		e.breaker.injectedCall(f, d)
		return f, d
	}
	return nil, 0
}

// injectedCall counts a call a fault experiment chose and records the
// outcome of its answer.
func (b *Breaker) injectedCall(f *Fault, delay time.Duration) {
	if delay > 0 {
		b.faultCalls[faultLatency].Add(1)
	}
	switch {
	case f.Abort:
		b.faultCalls[faultAbort].Add(1)
		b.record(Failure, true)
	case f.Status >= 500:
		b.faultCalls[faultStatus].Add(1)
		b.record(Failure, true)
	case f.Status != 0:
		b.faultCalls[faultStatus].Add(1)
		b.record(Success, true)
	}
}

// startFaults starts the experiments of ManagerConfig.Faults; on an error,
// the ones started are stopped again.
func (m *Manager) startFaults(exps []Fault) error {
	for i, f := range exps {
		if _, err := m.startFault(f); err != nil {
			for _, g := range exps[:i] {
				m.StopFault(g.ID)
			}
			return err
		}
	}
	return nil
}
