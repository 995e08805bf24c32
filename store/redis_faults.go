package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
)

// Fault experiments are shared through Redis: one started on an instance
// (core.Manager.StartFault, an events.FaultChange start with no Origin)
// runs on every instance, with the starter's ID as its Origin, and one
// stopped on any instance ends on all of them.
//
// Each experiment is a key holding its JSON that expires at its end (a
// lease: no instance needs to be alive to end it), indexed in a sorted set
// scored by the end, under a version that every start and stop changes.
// A start or a stop writes and publishes in one script; the others apply
// the message at once and, every sync round, read the list again when its
// version moved (missed messages, a new instance, an outage). Times in
// Redis are Redis's: an end is converted to this instance's clock when it
// is applied, and each instance ends its copy by itself at that time, as
// the key expires. Stopping is what the store shares of an end: an
// experiment that expires ends everywhere by itself.
//
// Only experiments started after AttachManager are shared: those running
// before (a kit's configured ones, which each instance starts itself) stay
// this instance's. After Close nothing is shared, so an instance that
// stops its experiments as it shuts down ends them here only.

// clusterKeys are the keys of what the instances share beyond endpoints:
// all under the hash tag {prefix:cluster}, so that in Redis Cluster one
// script reaches them together.
type clusterKeys struct {
	faults      string // sorted set: experiment ID, scored by its end (Unix ms)
	faultPrefix string // + ID: string, the experiment's JSON; expires at its end
	version     string // string: changes with every start and stop
	members     string // hash: instance ID -> last seen (Unix ms)
}

func newClusterKeys(prefix string) clusterKeys {
	tag := "{" + prefix + ":cluster}"
	return clusterKeys{faults: tag + ":faults", faultPrefix: tag + ":fault:", version: tag + ":faults:version", members: tag + ":members"}
}

// Bounds of shared experiments.
const (
	maxFaultIDLen = 64       // core's bound on an experiment's ID
	maxFaultLen   = 16 << 10 // bytes of an experiment's JSON (core's bounds, every byte escaped)
	// maxFaultAhead is the latest believable end: core caps an
	// experiment's duration at 24h.
	maxFaultAhead = 25 * time.Hour
	// faultVersionTTL keeps the version past the end of any experiment.
	faultVersionTTL = maxFaultAhead
	// faultStartMargin: an experiment that would end within it here is
	// not applied, only to end at once.
	faultStartMargin = 10 * time.Millisecond
	// faultEndMargin: an experiment within it of its end is left to
	// expire here, rather than be taken for stopped, since Redis and this
	// instance tell its end apart by that much at most.
	faultEndMargin = 100 * time.Millisecond
)

// bumpVersion is Lua that changes the version key KEYS[2]: it counts up,
// from Redis's time in microseconds when it was lost, so that a version
// seen before the loss is not met again. ARGV[ttlArg] is its TTL in ms.
const bumpVersion = `
local function bump(vk, ttl, tm)
  local n = redis.call('TYPE', vk).ok == 'string' and redis.pcall('INCR', vk)
  if type(n) ~= 'number' then
    redis.call('SET', vk, string.format('%d', tonumber(tm[1]) * 1000000 + tonumber(tm[2])))
  end
  redis.call('PEXPIRE', vk, ttl)
end
`

// faultStartScript writes an experiment and publishes its start.
//
// KEYS: 1 index, 2 version, 3 the experiment's key.
// ARGV: 1 ID, 2 the experiment (JSON), 3 its end (Unix ms, Redis's clock),
// 4 the most experiments the index may hold, 5 channel, 6 message,
// 7 the version's TTL (ms).
//
// Returns {1 written, 0 over already, or -1 the index is full; Redis's time (Unix ms)}.
var faultStartScript = redis.NewScript(bumpVersion + `
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
local ix = KEYS[1]
local ty = redis.call('TYPE', ix).ok
if ty ~= 'zset' and ty ~= 'none' then redis.call('DEL', ix) end
redis.call('ZREMRANGEBYSCORE', ix, '-inf', now)
local ends = tonumber(ARGV[3])
if ends <= now then return {0, now} end
if not redis.call('ZSCORE', ix, ARGV[1]) and redis.call('ZCARD', ix) >= tonumber(ARGV[4]) then return {-1, now} end
redis.call('SET', KEYS[3], ARGV[2], 'PX', string.format('%d', ends - now))
redis.call('ZADD', ix, ARGV[3], ARGV[1])
local last = redis.call('ZRANGE', ix, -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', ix, last[2])
bump(KEYS[2], ARGV[7], tm)
redis.call('PUBLISH', ARGV[5], ARGV[6])
return {1, now}
`)

// faultStopScript removes an experiment and publishes its stop, whether
// or not Redis still held it (instances may have it from a message).
//
// KEYS: 1 index, 2 version, 3 the experiment's key.
// ARGV: 1 ID, 2 channel, 3 message, 4 the version's TTL (ms).
//
// Returns how many of the index entry and the key it removed.
var faultStopScript = redis.NewScript(bumpVersion + `
local tm = redis.call('TIME')
local n = 0
if redis.call('TYPE', KEYS[1]).ok == 'zset' then n = redis.call('ZREM', KEYS[1], ARGV[1]) end
n = n + redis.call('DEL', KEYS[3])
bump(KEYS[2], ARGV[4], tm)
redis.call('PUBLISH', ARGV[2], ARGV[3])
return n
`)

// faultShare is what the store knows of the experiments it shares. The
// worker alone touches it, but for the subscription's channel.
type faultShare struct {
	m   *core.Manager
	sub *events.Subscription // m's bus, for the experiments' starts and ends
	max int                  // FaultLimits.MaxFaults: what is written and read at most

	before  map[string]bool         // running when attached: this instance's own
	known   map[string]*sharedFault // shared experiments, by ID
	version string                  // the list's version when last read in full
	full    bool                    // the next round reads the list whatever its version
	rounds  uint64

	// Problems reported once each: key -> fingerprint of what was seen,
	// so that garbage read every round is logged once.
	reported map[string]uint64
}

// sharedFault is one experiment the store shares.
type sharedFault struct {
	ends    time.Time // on this instance's clock
	local   bool      // started here; else applied from another instance
	written bool      // in Redis, as far as the store knows
	refused bool      // Redis would not take it (the index is full): this instance's only
	stopped bool      // stopped here, and the stop not shared yet
	ended   bool      // no longer running here, and never applied again
}

// followFaults shares the experiments of m if it runs fault injection and
// is the first such Manager attached.
func (s *RedisStore) followFaults(m *core.Manager) {
	lim, on := m.FaultLimits()
	if !on {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.faults.Load() != nil {
		return
	}
	fs := &faultShare{m: m, max: lim.MaxFaults, before: map[string]bool{}, known: map[string]*sharedFault{},
		full: true, reported: map[string]uint64{}}
	// Listed before subscribing: one started in between is in neither,
	// and the next round finds it running unknown, and shares it.
	for _, f := range m.Faults() {
		if f.Origin == "" {
			fs.before[f.ID] = true
		}
	}
	fs.sub = m.Bus().Subscribe(min(max(1024, 4*lim.MaxFaults), 1<<16))
	s.faults.Store(fs)
}

// faultEvents is the channel of the followed Manager's events, or nil.
func (s *RedisStore) faultEvents() <-chan events.Event {
	if fs := s.faults.Load(); fs != nil {
		return fs.sub.C()
	}
	return nil
}

// onFaultEvent shares a start or a stop made on this instance. The bus
// carries every event: the others are ignored.
func (s *RedisStore) onFaultEvent(e events.Event) {
	fs := s.faults.Load()
	fc, ok := e.(events.FaultChange)
	if !ok || fs == nil {
		return
	}
	switch fc.Type {
	case events.TypeFaultStart:
		if fc.Origin != "" || fs.before[fc.ID] || fs.known[fc.ID] != nil {
			return // applied from the cluster, this instance's own, or found by a round first
		}
		f, ok := runningFault(fs.m, fc.ID)
		if !ok {
			return // over already: its end follows
		}
		sf := &sharedFault{ends: f.Ends, local: true}
		fs.known[fc.ID] = sf
		s.writeFault(fs, f, sf)
	case events.TypeFaultEnd:
		delete(fs.before, fc.ID)
		sf := fs.known[fc.ID]
		if sf == nil || sf.ended {
			return // not shared, or ended by the store itself: no echo
		}
		sf.ended = true
		if fc.Reason == "expired" || sf.local && !sf.written {
			return // it ends everywhere by itself, or it never left this instance
		}
		sf.stopped = true
		s.stopFault(fs, fc.ID, fc.Endpoint, sf)
	}
}

// drainFaultEvents handles the events already queued.
func (s *RedisStore) drainFaultEvents(fs *faultShare) {
	for {
		select {
		case e, ok := <-fs.sub.C():
			if !ok {
				return
			}
			s.onFaultEvent(e)
		default:
			return
		}
	}
}

// runningFault returns the experiment id as m runs it.
func runningFault(m *core.Manager, id string) (core.Fault, bool) {
	for _, f := range m.Faults() {
		if f.ID == id {
			return f, true
		}
	}
	return core.Fault{}, false
}

// writeFault writes f, started here, and publishes it. While Redis is
// unreachable it stays unwritten, for a round after the reconnection.
func (s *RedisStore) writeFault(fs *faultShare, f core.Fault, sf *sharedFault) {
	if !s.healthy.Load() || s.ctx.Err() != nil {
		return
	}
	w := wireFaultOf(f, s.cfg.InstanceID, s.toRedis(f.Ends).UnixMilli())
	payload := encodeJSON(w)
	msg := encodeJSON(wireFaultMessage{Op: "start", Instance: s.cfg.InstanceID, Fault: &w})
	k := s.ckeys
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.OpTimeout)
	defer cancel()
	v, err := faultStartScript.Run(ctx, s.client, []string{k.faults, k.version, k.faultPrefix + f.ID},
		f.ID, payload, w.Ends, fs.max, s.faultsChannel, msg, faultVersionTTL.Milliseconds()).Result()
	var code int64
	if err == nil {
		code, err = parseFaultStartReply(v, s.redisNow())
	}
	switch {
	case err != nil:
		s.failedShare(f.Endpoint, "share fault experiment "+f.ID, err)
	case code == -1:
		sf.refused = true
		s.warnOnce(fs, "full:"+f.ID, 1, f.Endpoint, "fault experiment "+f.ID+" runs on this instance only",
			fmt.Errorf("the cluster runs %d experiments already, the most core.FaultLimits.MaxFaults allows here", fs.max))
	default:
		// Written, or over by Redis's clock already: either way nothing
		// is left to write.
		sf.written = true
	}
}

// stopFault removes an experiment stopped here from Redis and publishes
// the stop. While Redis is unreachable the stop waits for a round after
// the reconnection.
func (s *RedisStore) stopFault(fs *faultShare, id, endpoint string, sf *sharedFault) {
	if !s.healthy.Load() || s.ctx.Err() != nil {
		return
	}
	k := s.ckeys
	msg := encodeJSON(wireFaultMessage{Op: "stop", Instance: s.cfg.InstanceID, ID: id})
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.OpTimeout)
	defer cancel()
	err := faultStopScript.Run(ctx, s.client, []string{k.faults, k.version, k.faultPrefix + id},
		id, s.faultsChannel, msg, faultVersionTTL.Milliseconds()).Err()
	if err != nil {
		s.failedShare(endpoint, "share the stop of fault experiment "+id, err)
		return
	}
	sf.stopped = false
}

// failedShare handles the error of a call that shares an experiment: an
// outage degrades the store (the next rounds after it reconcile), any
// other error is reported.
func (s *RedisStore) failedShare(endpoint, what string, err error) {
	if ep := s.lookup(endpoint); ep != nil {
		s.failed(ep, what, err)
		return
	}
	s.failed(nil, what, err)
}

// onFaultMessage applies another instance's start or stop.
func (s *RedisStore) onFaultMessage(payload []byte) {
	fs := s.faults.Load()
	if fs == nil {
		return
	}
	m, err := decodeFaultMessage(payload, s.redisNow())
	if err != nil {
		s.report(nil, "fault message on "+s.faultsChannel+" ignored", err)
		return
	}
	if m.instance == s.cfg.InstanceID {
		return // this instance's own
	}
	s.drainFaultEvents(fs) // a stop made here just now is known before a start is applied
	if m.stop {
		s.endShared(fs, m.id)
		return
	}
	if fs.known[m.id] != nil {
		return
	}
	if _, ok := runningFault(fs.m, m.id); ok {
		return // an experiment of this instance's own, under the same ID
	}
	s.applyFault(fs, m.entry)
}

// endShared ends here an experiment the cluster no longer runs. Its end
// event is not shared back: the entry is ended first.
func (s *RedisStore) endShared(fs *faultShare, id string) {
	sf := fs.known[id]
	if sf == nil || sf.ended {
		return
	}
	sf.ended, sf.stopped = true, false
	fs.m.StopFault(id)
}

// applyFault starts another instance's experiment here, with its Origin
// and its end on this instance's clock, and reports whether it runs.
func (s *RedisStore) applyFault(fs *faultShare, e faultEntry) (core.Fault, bool) {
	ends := s.toLocal(time.UnixMilli(e.ends))
	if ends.Sub(s.clock.Now()) < faultStartMargin {
		return core.Fault{}, false // over, or as good as over
	}
	f := e.f
	f.Ends = ends
	f, err := fs.m.StartFault(f)
	if err != nil {
		s.warnOnce(fs, "entry:"+e.f.ID, e.print, e.f.Endpoint, "fault experiment "+e.f.ID+" of "+e.f.Origin+" not run here", err)
		return core.Fault{}, false
	}
	fs.known[f.ID] = &sharedFault{ends: ends, written: true}
	return f, true
}

// faultRound reconciles the experiments with the list r read from Redis
// (when r.faultsRead) and shares what waits to be: a start made while
// Redis was unreachable, a stop made then, one whose event the bus
// dropped. expected are the experiments that Redis held as far as the
// store knew before the read. It runs on the worker, after every round.
func (s *RedisStore) faultRound(fs *faultShare, r *roundReply, expected map[string]bool) {
	s.drainFaultEvents(fs)
	running := map[string]core.Fault{}
	for _, f := range fs.m.Faults() {
		running[f.ID] = f
	}
	s.drainFaultEvents(fs) // whatever ended before the listing is known now
	now := s.clock.Now()
	for id := range fs.before {
		if _, ok := running[id]; !ok {
			delete(fs.before, id)
		}
	}
	if r.faultsRead {
		s.reconcileFaults(fs, r, expected, running, now)
	}
	for id, f := range running {
		if f.Origin == "" && !fs.before[id] && fs.known[id] == nil {
			fs.known[id] = &sharedFault{ends: f.Ends, local: true} // its start event was dropped
		}
	}
	for id, sf := range fs.known {
		f, ok := running[id]
		switch {
		case sf.stopped:
			s.stopFault(fs, id, f.Endpoint, sf)
		case !ok && !sf.ended:
			// Over here without an event seen (the bus dropped it).
			sf.ended = true
			if sf.ends.Sub(now) > faultEndMargin && (sf.written || !sf.local) {
				sf.stopped = true
				s.stopFault(fs, id, f.Endpoint, sf)
			}
		case ok && sf.local && !sf.written && !sf.refused && !sf.ended:
			s.writeFault(fs, f, sf)
		}
		if !s.healthy.Load() {
			return
		}
	}
}

// reconcileFaults applies the list Redis holds: experiments it holds and
// this instance does not run start here, those it no longer holds end
// here.
func (s *RedisStore) reconcileFaults(fs *faultShare, r *roundReply, expected map[string]bool, running map[string]core.Fault, now time.Time) {
	if r.badIndex {
		s.warnOnce(fs, "index", 1, "", "fault experiments in "+s.ckeys.faults+" ignored",
			malformed("%s is not a sorted set; the next start replaces it", s.ckeys.faults))
	} else {
		delete(fs.reported, "index")
	}
	truncated := r.total > int64(len(r.faults))
	if truncated {
		s.warnOnce(fs, "truncated", uint64(r.total), "", "fault experiments in "+s.ckeys.faults+" partly ignored",
			fmt.Errorf("Redis holds %d experiments, more than core.FaultLimits.MaxFaults (%d) here", r.total, fs.max))
	}
	held := make(map[string]bool, len(r.faults))
	for _, raw := range r.faults {
		held[raw.id] = true
		e, err := decodeFault(raw, r.redisTime)
		if err != nil {
			s.warnOnce(fs, "entry:"+raw.id, fingerprint(raw.payload), "", "fault experiment "+strconv.Quote(raw.id)+" in Redis ignored", err)
			continue
		}
		if _, runs := running[raw.id]; runs || fs.known[raw.id] != nil {
			// Running (perhaps an experiment of this instance's own under
			// the same ID), or ended here with its stop on the way.
			continue
		}
		if f, ok := s.applyFault(fs, e); ok {
			running[f.ID] = f
		}
	}
	for key := range fs.reported {
		if id, ok := strings.CutPrefix(key, "entry:"); ok && !held[id] {
			delete(fs.reported, key) // gone: if it comes back broken, it is news
		}
	}
	for id, sf := range fs.known {
		_, runs := running[id]
		switch {
		case held[id] || sf.stopped:
		case !sf.ended && expected[id] && !truncated:
			// Stopped elsewhere and the message lost, or lost by Redis:
			// over in the cluster. Within its last moments it is left
			// to expire here.
			if runs && sf.ends.Sub(now) > faultEndMargin {
				s.endShared(fs, id)
			}
			sf.ended = true
		case sf.ended && !runs:
			delete(fs.known, id) // over everywhere
		}
	}
	fs.version = r.version
	fs.full = false
}

// warnOnce reports a problem the first time it is seen as it is: key
// names it, print tells one state of it from another.
func (s *RedisStore) warnOnce(fs *faultShare, key string, print uint64, endpoint, msg string, err error) {
	if v, ok := fs.reported[key]; ok && v == print {
		return
	}
	if len(fs.reported) >= 4*fs.max+16 {
		clear(fs.reported) // bounded: at worst, reported again
	}
	fs.reported[key] = print
	s.warn(endpoint, msg, err)
}

// fingerprint tells payloads apart for warnOnce.
func fingerprint(payload string) uint64 {
	h := fnv.New64a()
	_, _ = io.WriteString(h, payload)
	return h.Sum64() | 1
}

// finishFaults shares what the worker has not yet (a start or a stop made
// just before Close) and stops following the Manager: what it does after
// Close (stop its experiments as the process ends) stays here.
func (s *RedisStore) finishFaults() {
	fs := s.faults.Load()
	if fs == nil {
		return
	}
	s.drainFaultEvents(fs)
	fs.sub.Close()
	for e := range fs.sub.C() { // what was queued before Close
		s.onFaultEvent(e)
	}
}

// wireFault is an experiment as Redis holds it and a start message
// carries it.
type wireFault struct {
	ID          string  `json:"id"`
	Endpoint    string  `json:"endpoint"`
	Percent     float64 `json:"percent"`
	Latency     int64   `json:"latency_ns,omitempty"`
	LatencyMax  int64   `json:"latency_max_ns,omitempty"`
	Status      int     `json:"status,omitempty"`
	Abort       bool    `json:"abort,omitempty"`
	Header      string  `json:"header,omitempty"`
	HeaderValue string  `json:"header_value,omitempty"`
	User        string  `json:"user,omitempty"`
	Duration    int64   `json:"duration_ns"`
	Ends        int64   `json:"ends"` // Unix ms, Redis's clock
	Reason      string  `json:"reason,omitempty"`
	Origin      string  `json:"origin"` // the instance that started it
}

func wireFaultOf(f core.Fault, origin string, ends int64) wireFault {
	return wireFault{
		ID: f.ID, Endpoint: f.Endpoint, Percent: f.Percent, Latency: int64(f.Latency), LatencyMax: int64(f.LatencyMax),
		Status: f.Status, Abort: f.Abort, Header: f.Header, HeaderValue: f.HeaderValue, User: f.User,
		Duration: int64(f.Duration), Ends: ends, Reason: f.Reason, Origin: origin,
	}
}

// wireFaultMessage is what the start and stop scripts publish.
type wireFaultMessage struct {
	Op       string     `json:"op"`       // "start" or "stop"
	Instance string     `json:"instance"` // the sender
	ID       string     `json:"id,omitempty"`
	Fault    *wireFault `json:"fault,omitempty"`
}

// encodeJSON is v's JSON, without HTML escapes, which would only make it
// longer.
func encodeJSON(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the wire types always encode
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// faultEntry is an experiment read from Redis or a start message, checked
// as far as the store can: StartFault checks the rest.
type faultEntry struct {
	f     core.Fault // Ends unset: see ends
	ends  int64      // Unix ms, Redis's clock
	print uint64     // fingerprint of the experiment, for warnOnce
}

// faultRaw is an entry of the list as the round script returns it.
type faultRaw struct {
	id, score, payload string // payload "" for a key that is not a string
}

// decodeFault parses and checks an entry of the list: its JSON, and its
// ID and end agreeing with the index.
func decodeFault(raw faultRaw, now time.Time) (faultEntry, error) {
	if raw.payload == "" {
		return faultEntry{}, malformed("fault experiment %.70q: its key is not a string", raw.id)
	}
	var w wireFault
	if err := decodeStrict([]byte(raw.payload), maxFaultLen, &w); err != nil {
		return faultEntry{}, malformed("fault experiment %.70q: %v", raw.id, err)
	}
	e, err := checkWireFault(w, now)
	if err != nil {
		return faultEntry{}, err
	}
	score, err := strconv.ParseFloat(raw.score, 64)
	switch {
	case w.ID != raw.id:
		return faultEntry{}, malformed("fault experiment %.70q holds the ID %.70q", raw.id, w.ID)
	case err != nil || score != float64(w.Ends):
		return faultEntry{}, malformed("fault experiment %.70q ends at %d, and %.30q in the index", raw.id, w.Ends, raw.score)
	}
	return e, nil
}

// checkWireFault checks what core does not of an experiment's JSON, and
// builds it.
func checkWireFault(w wireFault, now time.Time) (faultEntry, error) {
	switch {
	case w.ID == "" || len(w.ID) > maxFaultIDLen:
		return faultEntry{}, malformed("fault experiment ID of %d bytes, want 1 to %d", len(w.ID), maxFaultIDLen)
	case core.ValidateEndpoint(w.Endpoint) != nil:
		return faultEntry{}, malformed("fault experiment %s: %v", w.ID, core.ValidateEndpoint(w.Endpoint))
	case !validID(w.Origin):
		return faultEntry{}, malformed("fault experiment %s: origin %.40q is not a valid instance ID", w.ID, w.Origin)
	case w.Ends <= 0 || w.Ends > now.Add(maxFaultAhead).UnixMilli():
		return faultEntry{}, malformed("fault experiment %s: end %d out of range", w.ID, w.Ends)
	case w.Latency < 0 || w.LatencyMax < 0 || w.Duration < 0:
		return faultEntry{}, malformed("fault experiment %s: a negative duration", w.ID)
	}
	f := core.Fault{
		ID: w.ID, Endpoint: w.Endpoint, Percent: w.Percent, Latency: time.Duration(w.Latency), LatencyMax: time.Duration(w.LatencyMax),
		Status: w.Status, Abort: w.Abort, Header: w.Header, HeaderValue: w.HeaderValue, User: w.User,
		Duration: time.Duration(w.Duration), Reason: w.Reason, Origin: w.Origin,
	}
	// The same experiment has the same fingerprint, read from Redis or
	// from a message.
	return faultEntry{f: f, ends: w.Ends, print: fingerprint(string(encodeJSON(w)))}, nil
}

// faultMessage is a start or a stop another instance published.
type faultMessage struct {
	stop     bool
	instance string
	id       string
	entry    faultEntry // a start's experiment
}

// decodeFaultMessage parses and checks a message of the faults channel.
// Unknown fields, trailing data, wrong types and out-of-range values are
// errors matching errMalformed; it never panics.
func decodeFaultMessage(payload []byte, now time.Time) (faultMessage, error) {
	var w wireFaultMessage
	if err := decodeStrict(payload, maxFaultLen+1<<10, &w); err != nil {
		return faultMessage{}, malformed("fault message: %v", err)
	}
	if !validID(w.Instance) {
		return faultMessage{}, malformed("fault message: instance %.40q is not a valid instance ID", w.Instance)
	}
	m := faultMessage{instance: w.Instance}
	switch {
	case w.Op == "stop" && w.Fault == nil && w.ID != "" && len(w.ID) <= maxFaultIDLen:
		m.stop, m.id = true, w.ID
	case w.Op == "start" && w.Fault != nil && w.ID == "":
		e, err := checkWireFault(*w.Fault, now)
		if err != nil {
			return faultMessage{}, err
		}
		m.id, m.entry = e.f.ID, e
	default:
		return faultMessage{}, malformed("fault message: op %.20q with id %.70q and fault %v", w.Op, w.ID, w.Fault != nil)
	}
	return m, nil
}

// parseFaultStartReply parses the start script's {code, time}.
func parseFaultStartReply(v any, now time.Time) (int64, error) {
	r, ok := v.([]any)
	if !ok || len(r) != 2 {
		return 0, malformed("fault start reply %.100v", v)
	}
	if _, err := replyInt(r[1], "Redis time", 1, now.Add(maxOpenAhead).UnixMilli()); err != nil {
		return 0, err
	}
	return replyInt(r[0], "fault start result", -1, 1)
}
