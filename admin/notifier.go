package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
)

// Errors a Receiver ends with, and Register's refusal.
var (
	// ErrTooManySubscribers is returned by Register (and the feed answers
	// 503) when MaxSubscribers are connected.
	ErrTooManySubscribers = errors.New("admin: too many feed subscribers")
	// ErrSlowSubscriber ends a subscriber that let its buffer fill up: the
	// notifier never waits for anyone.
	ErrSlowSubscriber = errors.New("admin: subscriber too slow, its buffer filled up")
	// ErrNotifierClosed ends every subscriber when the notifier closes, and
	// is returned by Register afterwards.
	ErrNotifierClosed = errors.New("admin: notifier closed")
)

// NotifierConfig configures a Notifier. The zero value is valid.
type NotifierConfig struct {
	// Bus is the source of events, usually the Manager's. Nil means only
	// breakers given to MonitorBreaker are followed.
	Bus *events.Bus
	// MaxSubscribers, SubscriberBuffer and EventHistory are as in Config
	// and have the same defaults and ranges.
	MaxSubscribers   int
	SubscriberBuffer int
	EventHistory     int
	// Logger receives slow-subscriber disconnects. Nil means slog.Default().
	Logger *slog.Logger
}

// Notifier fans breaker state changes and other events out to
// subscribers as JSON messages (the seed's ResilienceWebSocketNotifier). It
// is the hub behind the Handler's feed, and usable on its own.
//
// One goroutine reads the bus and hands each message to every subscriber
// without waiting: a subscriber whose buffer is full is disconnected with
// ErrSlowSubscriber. Every event gets the next sequence number; events the
// notifier itself lost (its bus subscription overflowed) still use up
// numbers, taken when the loss is noticed, so subscribers see a jump and
// know to refetch the status.
//
// An event's message is its JSON form plus "type" (events.Event's
// EventType, unless the form has a "type" already) and "seq". For a breaker
// transition that is the seed's shape with two fields added:
//
//	{"endpoint":"api-service","old_state":"Closed","new_state":"Open",
//	 "timestamp":"2025-10-08T12:00:00Z","reason":"...","type":"state_change","seq":7}
type Notifier struct {
	maxSubs, buffer int
	log             *slog.Logger
	sub             *events.Subscription // nil without a bus
	extra           chan events.Event    // MonitorBreaker's events
	extraDropped    atomic.Uint64
	quit            chan struct{}
	done            chan struct{}
	closeOnce       sync.Once

	// Set before the goroutine starts (by the Handler): periodic snapshots
	// for subscribers that want them.
	snapshot      func(seq uint64) []byte
	snapshotEvery time.Duration

	mu        sync.Mutex
	subs      map[*subscriber]struct{}
	closed    bool
	seq       uint64
	ring      []ringEntry // recent messages, oldest at ringStart
	ringStart int
	monitored map[*core.Breaker]func()

	// Only the hub goroutine touches these.
	busDropped, extraDropSeen uint64
}

type ringEntry struct {
	seq uint64
	msg []byte
}

// subscriber is one feed client or Receiver. Its channel is closed, and
// err set, by the hub under Notifier.mu when it is dropped.
type subscriber struct {
	ch        chan []byte
	gone      chan struct{}
	snapshots bool
	abort     context.CancelFunc // cuts a blocked write short; may be nil
	err       error              // under Notifier.mu
}

// NewNotifier starts a Notifier; Close stops it. It fails when a limit is
// out of range, naming the field.
func NewNotifier(cfg NotifierConfig) (*Notifier, error) {
	c := Config{
		MaxSubscribers: cfg.MaxSubscribers, SubscriberBuffer: cfg.SubscriberBuffer,
		EventHistory: cfg.EventHistory, Logger: cfg.Logger,
	}
	ck := checker{prefix: "admin.NotifierConfig."}
	c.checkLimits(&ck)
	if err := ck.err(); err != nil {
		return nil, err
	}
	n := newNotifier(cfg.Bus, c)
	n.start()
	return n, nil
}

// feedBuffer is the size of the queue of MonitorBreaker events, and a
// quarter of the bus subscription.
const feedBuffer = 256

// newNotifier makes a notifier from a validated Config without starting it.
func newNotifier(bus *events.Bus, c Config) *Notifier {
	n := &Notifier{
		maxSubs: c.MaxSubscribers, buffer: c.SubscriberBuffer, log: c.Logger,
		extra: make(chan events.Event, feedBuffer),
		quit:  make(chan struct{}), done: make(chan struct{}),
		subs:      make(map[*subscriber]struct{}),
		ring:      make([]ringEntry, 0, c.EventHistory),
		monitored: make(map[*core.Breaker]func()),
	}
	if bus != nil {
		// Generous: the hub only encodes and copies pointers, so it keeps up
		// unless the process is starved; a loss shows as a seq gap.
		n.sub = bus.Subscribe(4 * feedBuffer)
	}
	return n
}

func (n *Notifier) start() { go n.run() }

// Close stops the notifier: every subscriber ends with ErrNotifierClosed,
// monitored breakers are let go and the goroutine exits before Close
// returns. Calling it again does nothing.
func (n *Notifier) Close() {
	n.closeOnce.Do(func() {
		close(n.quit)
		<-n.done
		if n.sub != nil {
			n.sub.Close()
		}
		n.mu.Lock()
		n.closed = true
		for s := range n.subs {
			n.dropLocked(s, ErrNotifierClosed)
		}
		stops := make([]func(), 0, len(n.monitored))
		for _, stop := range n.monitored {
			stops = append(stops, stop)
		}
		clear(n.monitored)
		n.mu.Unlock()
		for _, stop := range stops {
			stop()
		}
	})
}

func (n *Notifier) run() {
	defer close(n.done)
	var busC <-chan events.Event
	if n.sub != nil {
		busC = n.sub.C()
	}
	var tick <-chan time.Time
	if n.snapshot != nil {
		t := time.NewTicker(n.snapshotEvery)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-n.quit:
			return
		case e, ok := <-busC:
			if !ok {
				busC = nil
				continue
			}
			n.publish(e, n.busGap())
		case e := <-n.extra:
			n.publish(e, n.extraGap())
		case <-tick:
			n.broadcastSnapshot()
		}
	}
}

// busGap returns how many bus events were lost since the last call.
func (n *Notifier) busGap() uint64 {
	d := n.sub.Dropped()
	gap := d - n.busDropped
	n.busDropped = d
	return gap
}

// extraGap returns how many monitored-breaker events were lost since the
// last call.
func (n *Notifier) extraGap() uint64 {
	d := n.extraDropped.Load()
	gap := d - n.extraDropSeen
	n.extraDropSeen = d
	return gap
}

// publish numbers, records and fans out one event; gap events were lost
// before it. Only the hub goroutine writes n.seq, so it reads it unlocked
// and encodes outside the lock.
func (n *Notifier) publish(e events.Event, gap uint64) {
	seq := n.seq + gap + 1
	msg, err := encodeEvent(seq, e)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.seq = seq
	if err != nil {
		n.log.Warn("admin: event not sent to the feed", "type", e.EventType(), "err", err)
		return // its number is skipped: subscribers see the gap
	}
	if len(n.ring) < cap(n.ring) {
		n.ring = append(n.ring, ringEntry{seq, msg})
	} else {
		n.ring[n.ringStart] = ringEntry{seq, msg}
		n.ringStart = (n.ringStart + 1) % len(n.ring)
	}
	for s := range n.subs {
		n.sendLocked(s, msg)
	}
}

// broadcastSnapshot sends a fresh snapshot to the subscribers that want
// one. It runs on the hub goroutine, so no event is numbered meanwhile and
// the snapshot's seq is exact.
func (n *Notifier) broadcastSnapshot() {
	n.mu.Lock()
	want := false
	for s := range n.subs {
		want = want || s.snapshots
	}
	seq := n.seq
	n.mu.Unlock()
	if !want {
		return
	}
	msg := n.safeSnapshot(seq)
	if msg == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for s := range n.subs {
		if s.snapshots {
			n.sendLocked(s, msg)
		}
	}
}

// safeSnapshot builds a snapshot, surviving a panicking status source so
// that one bad source cannot take the process down from this goroutine.
func (n *Notifier) safeSnapshot(seq uint64) (msg []byte) {
	defer func() {
		if p := recover(); p != nil {
			n.log.Error("admin: building a feed snapshot panicked", "panic", fmt.Sprint(p))
			msg = nil
		}
	}()
	return n.snapshot(seq)
}

// sendLocked hands msg to s, or drops s if its buffer is full.
func (n *Notifier) sendLocked(s *subscriber, msg []byte) {
	select {
	case s.ch <- msg:
	default:
		n.log.Warn("admin: feed subscriber dropped", "reason", ErrSlowSubscriber, "buffer", cap(s.ch))
		n.dropLocked(s, ErrSlowSubscriber)
	}
}

// dropLocked removes s and ends it with err.
func (n *Notifier) dropLocked(s *subscriber, err error) {
	if _, ok := n.subs[s]; !ok {
		return
	}
	delete(n.subs, s)
	s.err = err
	close(s.gone)
	close(s.ch)
	if s.abort == nil {
		return
	}
	switch err {
	case ErrSlowSubscriber:
		// Its buffer is full because it is stuck writing to a peer that
		// stopped reading: cut the write short now.
		s.abort()
	case ErrNotifierClosed:
		// Let it say goodbye (going away) first; cut it only if a write
		// holds it up. Cutting at once could kill a write that has just
		// reached the peer and is returning.
		time.AfterFunc(closeGrace, s.abort)
	}
}

// closeGrace is how long a feed client may take to be told the feed is
// closing before its connection is cut.
const closeGrace = time.Second

// subscribe adds a subscriber and returns it with the current seq: every
// message it will receive has a higher one.
func (n *Notifier) subscribe(snapshots bool, abort context.CancelFunc) (*subscriber, uint64, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, 0, ErrNotifierClosed
	}
	if len(n.subs) >= n.maxSubs {
		return nil, 0, ErrTooManySubscribers
	}
	s := &subscriber{ch: make(chan []byte, n.buffer), gone: make(chan struct{}), snapshots: snapshots, abort: abort}
	n.subs[s] = struct{}{}
	return s, n.seq, nil
}

// unsubscribe removes s if it is still subscribed; err says why.
func (n *Notifier) unsubscribe(s *subscriber, err error) {
	n.mu.Lock()
	n.dropLocked(s, err)
	n.mu.Unlock()
}

// Subscribers returns how many subscribers are connected now.
func (n *Notifier) Subscribers() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.subs)
}

// Seq returns the sequence number of the latest event.
func (n *Notifier) Seq() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.seq
}

// Recent returns the recent messages with a seq above since, oldest first,
// and the latest seq.
func (n *Notifier) Recent(since uint64) ([]json.RawMessage, uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]json.RawMessage, 0, len(n.ring))
	for i := range n.ring {
		e := n.ring[(n.ringStart+i)%len(n.ring)]
		if e.seq > since {
			out = append(out, e.msg)
		}
	}
	return out, n.seq
}

// Receiver receives the notifier's messages (the seed's register()
// receiver).
type Receiver struct {
	n    *Notifier
	s    *subscriber
	stop func() bool
}

// Register subscribes to every later event (the seed's register()). The
// Receiver's channel holds up to SubscriberBuffer messages; read it
// promptly, or the receiver is dropped with ErrSlowSubscriber. It ends when
// ctx ends, on Close, or when the notifier closes; Err then says why. Past
// MaxSubscribers it fails with ErrTooManySubscribers.
func (n *Notifier) Register(ctx context.Context) (*Receiver, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s, _, err := n.subscribe(false, nil)
	if err != nil {
		return nil, err
	}
	r := &Receiver{n: n, s: s}
	r.stop = context.AfterFunc(ctx, func() { n.unsubscribe(s, context.Cause(ctx)) })
	return r, nil
}

// C returns the channel of messages, each one JSON object; it is closed
// when the receiver ends. A message's bytes are shared with other
// subscribers: do not modify them.
func (r *Receiver) C() <-chan []byte { return r.s.ch }

// Close ends the receiver; its channel is closed. Calling it again does
// nothing.
func (r *Receiver) Close() {
	r.stop()
	r.n.unsubscribe(r.s, ErrReceiverClosed)
}

// ErrReceiverClosed is Err after Receiver.Close.
var ErrReceiverClosed = errors.New("admin: receiver closed")

// Err returns nil while the receiver is live, then why it ended:
// ErrSlowSubscriber, ErrNotifierClosed, ErrReceiverClosed or the cause of
// Register's context.
func (r *Receiver) Err() error {
	r.n.mu.Lock()
	defer r.n.mu.Unlock()
	return r.s.err
}

// MonitorBreaker follows a breaker's transitions (the seed's
// monitor_circuit_breaker), for a breaker that does not publish on the
// notifier's bus: one made with core.NewBreaker rather than by the Manager.
// (A breaker on the bus would be reported twice.) Monitoring the same
// breaker again does nothing. The returned function stops following it.
// The Handler also lists monitored breakers in its status and lets control
// actions reach them.
func (n *Notifier) MonitorBreaker(b *core.Breaker) (stop func()) {
	if b == nil {
		return func() {}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.monitored[b]; ok || n.closed {
		return func() {}
	}
	// The listener runs inside the breaker's transition delivery, outside
	// its lock: it must never block, so a full queue loses the event (and
	// the feed shows the gap).
	cancel := b.OnStateChange(func(e events.StateChange) {
		select {
		case n.extra <- e:
		default:
			n.extraDropped.Add(1)
		}
	})
	n.monitored[b] = cancel
	var once sync.Once
	return func() {
		once.Do(func() {
			n.mu.Lock()
			defer n.mu.Unlock()
			if c, ok := n.monitored[b]; ok {
				c()
				delete(n.monitored, b)
			}
		})
	}
}

// monitoredBreakers returns the breakers given to MonitorBreaker.
func (n *Notifier) monitoredBreakers() []*core.Breaker {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]*core.Breaker, 0, len(n.monitored))
	for b := range n.monitored {
		out = append(out, b)
	}
	return out
}

// encodeEvent is e's JSON object with "type" (unless it has one) and "seq"
// appended, so that a StateChange keeps the seed's fields as they are.
func encodeEvent(seq uint64, e events.Event) ([]byte, error) {
	body, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	body = bytes.TrimSpace(body)
	if len(body) < 2 || body[0] != '{' {
		return nil, fmt.Errorf("admin: event %s is not a JSON object", e.EventType())
	}
	out := make([]byte, 0, len(body)+48)
	out = append(out, body[:len(body)-1]...)
	sep := func() {
		if len(out) > 1 {
			out = append(out, ',')
		}
	}
	if !hasKey(body, "type") {
		t, err := json.Marshal(e.EventType())
		if err != nil {
			return nil, err
		}
		sep()
		out = append(append(out, `"type":`...), t...)
	}
	sep()
	out = strconv.AppendUint(append(out, `"seq":`...), seq, 10)
	return append(out, '}'), nil
}

// hasKey reports whether the JSON object obj has the top-level key.
func hasKey(obj []byte, key string) bool {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return false
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return false
		}
		if k, _ := t.(string); k == key {
			return true
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return false
		}
	}
	return false
}
