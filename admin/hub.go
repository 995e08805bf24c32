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

// Errors callers test for with errors.Is.
var (
	// ErrTooManySubscribers is returned by Register (and the feed answers
	// 503) when Config.MaxSubscribers are connected.
	ErrTooManySubscribers = errors.New("admin: too many feed subscribers")
	// ErrSlowSubscriber ends a Receiver that let its buffer fill up: the
	// handler never waits for a subscriber.
	ErrSlowSubscriber = errors.New("admin: subscriber too slow, its buffer filled up")
	// ErrClosed ends a Receiver closed by its own Close or by the
	// Handler's, and is returned by Register after the Handler's Close.
	ErrClosed = errors.New("admin: closed")
)

// hub fans breaker state changes and other events out to subscribers (feed
// clients and Receivers) as JSON messages.
//
// One goroutine reads the bus and hands each message to every subscriber
// without waiting: a subscriber whose buffer is full is dropped with
// ErrSlowSubscriber. Every event gets the next sequence number; events the
// hub itself lost (its bus subscription overflowed) still use up numbers,
// taken when the loss is noticed, so subscribers see a jump and know to
// refetch the status.
type hub struct {
	maxSubs, buffer int
	log             *slog.Logger
	sub             *events.Subscription
	extra           chan events.Event // MonitorBreaker's events
	extraDropped    atomic.Uint64
	quit            chan struct{}
	done            chan struct{} // closed when the goroutine ends

	// Periodic snapshots for the feed clients.
	snapshot      func(seq uint64) []byte
	snapshotEvery time.Duration
	// Set before start, when wanted: onTick runs at every snapshot tick
	// before the snapshot is built, onEvent on every bus event before it
	// is published. Both run on the hub goroutine.
	onTick  func()
	onEvent func(events.Event) (consumed bool)

	mu        sync.Mutex
	subs      map[*subscriber]struct{}
	closed    bool
	seq       uint64
	ring      []ringEntry // recent messages, oldest at ringStart
	ringStart int
	monitored map[*core.Breaker]func()
	feeds     map[*subscriber]struct{} // feed connections still being served
	feedsGone chan struct{}            // closed once closed and feeds is empty
	cutting   bool                     // Close is cutting feed connections

	// Only the hub goroutine touches these.
	busDropped, extraDropSeen uint64
}

type ringEntry struct {
	seq uint64
	msg []byte
}

// subscriber is one feed client or Receiver. Its channel is closed, and
// err set, by the hub under hub.mu when it is dropped.
type subscriber struct {
	ch    chan []byte
	gone  chan struct{}
	feed  bool               // a WebSocket client: it wants snapshots
	abort context.CancelFunc // feed only: cuts a blocked write short
	cut   func()             // feed only, once accepted: closes the connection at once
	err   error              // under hub.mu
}

// extraBuffer is the size of the queue of MonitorBreaker events, and a
// quarter of the bus subscription.
const extraBuffer = 256

// closeGrace is how long Close lets feed clients take to be told goodbye
// before it cuts their connections.
const closeGrace = time.Second

// newHub starts a hub on bus with cfg's (validated) limits; snapshot builds
// the feed's snapshot message as of a sequence number.
func newHub(bus *events.Bus, cfg Config, snapshot func(uint64) []byte) *hub {
	n := &hub{
		maxSubs: cfg.MaxSubscribers, buffer: cfg.SubscriberBuffer, log: cfg.Logger,
		extra: make(chan events.Event, extraBuffer),
		quit:  make(chan struct{}), done: make(chan struct{}),
		snapshot: snapshot, snapshotEvery: cfg.SnapshotInterval,
		subs:      make(map[*subscriber]struct{}),
		ring:      make([]ringEntry, 0, cfg.EventHistory),
		monitored: make(map[*core.Breaker]func()),
		feeds:     make(map[*subscriber]struct{}),
		feedsGone: make(chan struct{}),
	}
	// Generous: the hub only encodes and copies pointers, so it keeps up
	// unless the process is starved; a loss shows as a seq gap.
	n.sub = bus.Subscribe(4 * extraBuffer)
	return n
}

func (n *hub) start() { go n.run() }

// close ends every subscriber with ErrClosed, lets monitored breakers go,
// stops the goroutine and waits for it and for the feed connections to
// end, cutting those that take longer than closeGrace to say goodbye.
func (n *hub) close(ctx context.Context) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	for s := range n.subs {
		n.dropLocked(s, ErrClosed)
	}
	if len(n.feeds) == 0 {
		close(n.feedsGone)
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
	close(n.quit)
	n.sub.Close()

	grace := time.NewTimer(closeGrace)
	defer grace.Stop()
	hubDone, feedsGone := n.done, n.feedsGone
	for hubDone != nil || feedsGone != nil {
		select {
		case <-hubDone:
			hubDone = nil
		case <-feedsGone:
			feedsGone = nil
		case <-grace.C:
			n.cutFeeds()
		case <-ctx.Done():
			n.cutFeeds()
			return fmt.Errorf("admin: Handler.Close: feed clients still connected: %w", ctx.Err())
		}
	}
	return nil
}

// cutFeeds closes every feed connection still being served.
func (n *hub) cutFeeds() {
	n.mu.Lock()
	n.cutting = true
	cuts := make([]func(), 0, 2*len(n.feeds))
	for s := range n.feeds {
		cuts = append(cuts, s.abort)
		if s.cut != nil {
			cuts = append(cuts, s.cut)
		}
	}
	n.mu.Unlock()
	for _, cut := range cuts {
		cut()
	}
}

func (n *hub) run() {
	defer close(n.done)
	busC := n.sub.C()
	tick := time.NewTicker(n.snapshotEvery)
	defer tick.Stop()
	for {
		select {
		case <-n.quit:
			return
		case e, ok := <-busC:
			if !ok {
				busC = nil
				continue
			}
			if n.onEvent != nil && n.onEvent(e) {
				continue // taken into the snapshots, not news of its own
			}
			n.publish(e, n.busGap())
		case e := <-n.extra:
			n.publish(e, n.extraGap())
		case <-tick.C:
			if n.onTick != nil {
				n.onTick()
			}
			n.broadcastSnapshot()
		}
	}
}

// busGap returns how many bus events were lost since the last call.
func (n *hub) busGap() uint64 {
	d := n.sub.Dropped()
	gap := d - n.busDropped
	n.busDropped = d
	return gap
}

// extraGap returns how many monitored-breaker events were lost since the
// last call.
func (n *hub) extraGap() uint64 {
	d := n.extraDropped.Load()
	gap := d - n.extraDropSeen
	n.extraDropSeen = d
	return gap
}

// publish numbers, records and fans out one event; gap events were lost
// before it. Only the hub goroutine writes n.seq, so it reads it unlocked
// and encodes outside the lock.
func (n *hub) publish(e events.Event, gap uint64) {
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

// broadcastSnapshot sends a fresh snapshot to the feed clients. It runs on
// the hub goroutine, so no event is numbered meanwhile and the snapshot's
// seq is exact.
func (n *hub) broadcastSnapshot() {
	n.mu.Lock()
	want := false
	for s := range n.subs {
		want = want || s.feed
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
		if s.feed {
			n.sendLocked(s, msg)
		}
	}
}

// safeSnapshot builds a snapshot, surviving a panic in a component's
// status so that it cannot take the process down from this goroutine.
func (n *hub) safeSnapshot(seq uint64) (msg []byte) {
	defer func() {
		if p := recover(); p != nil {
			n.log.Error("admin: building a feed snapshot panicked", "panic", fmt.Sprint(p))
			msg = nil
		}
	}()
	return n.snapshot(seq)
}

// sendLocked hands msg to s, or drops s if its buffer is full.
func (n *hub) sendLocked(s *subscriber, msg []byte) {
	select {
	case s.ch <- msg:
	default:
		n.log.Warn("admin: feed subscriber dropped", "reason", ErrSlowSubscriber, "buffer", cap(s.ch))
		n.dropLocked(s, ErrSlowSubscriber)
	}
}

// dropLocked removes s and ends it with err.
func (n *hub) dropLocked(s *subscriber, err error) {
	if _, ok := n.subs[s]; !ok {
		return
	}
	delete(n.subs, s)
	s.err = err
	close(s.gone)
	close(s.ch)
	if s.feed && err == ErrSlowSubscriber {
		// Its buffer is full because it is stuck writing to a peer that
		// stopped reading: cut the write short now.
		s.abort()
	}
}

// subscribe adds a subscriber and returns it with the current seq: every
// message it will receive has a higher one. A feed subscriber must end
// with feedDone.
func (n *hub) subscribe(feed bool, abort context.CancelFunc) (*subscriber, uint64, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, 0, ErrClosed
	}
	if len(n.subs) >= n.maxSubs {
		return nil, 0, ErrTooManySubscribers
	}
	s := &subscriber{ch: make(chan []byte, n.buffer), gone: make(chan struct{}), feed: feed, abort: abort}
	n.subs[s] = struct{}{}
	if feed {
		n.feeds[s] = struct{}{}
	}
	return s, n.seq, nil
}

// accepted records how to cut the feed subscriber's connection, and cuts
// it at once if Close is already cutting.
func (n *hub) accepted(s *subscriber, cut func()) {
	n.mu.Lock()
	s.cut = cut
	now := n.cutting
	n.mu.Unlock()
	if now {
		cut()
	}
}

// unsubscribe removes s if it is still subscribed; err says why.
func (n *hub) unsubscribe(s *subscriber, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.dropLocked(s, err)
}

// feedDone is the end of a feed subscriber's connection.
func (n *hub) feedDone(s *subscriber, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.dropLocked(s, err)
	if _, ok := n.feeds[s]; !ok {
		return
	}
	delete(n.feeds, s)
	if n.closed && len(n.feeds) == 0 {
		close(n.feedsGone)
	}
}

// why returns the error s was dropped with.
func (n *hub) why(s *subscriber) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return s.err
}

// subscribers returns how many subscribers are connected now.
func (n *hub) subscribers() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.subs)
}

// lastSeq returns the sequence number of the latest event.
func (n *hub) lastSeq() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.seq
}

// recent returns the recent messages with a seq above since, oldest first,
// and the latest seq.
func (n *hub) recent(since uint64) ([]json.RawMessage, uint64) {
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

// Receiver receives the feed's event messages in code, as Register gives
// it.
type Receiver struct {
	n    *hub
	s    *subscriber
	stop func() bool
}

// register subscribes a Receiver.
func (n *hub) register(ctx context.Context) (*Receiver, error) {
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

// Close ends the receiver; its channel is closed and Err returns
// ErrClosed. Calling it again does nothing.
func (r *Receiver) Close() {
	r.stop()
	r.n.unsubscribe(r.s, ErrClosed)
}

// Err returns nil while the receiver is live, then why it ended:
// ErrSlowSubscriber, ErrClosed, or the cause of Register's context.
func (r *Receiver) Err() error { return r.n.why(r.s) }

// monitor follows a breaker that does not publish on the hub's bus.
func (n *hub) monitor(b *core.Breaker) (stop func()) {
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
func (n *hub) monitoredBreakers() []*core.Breaker {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]*core.Breaker, 0, len(n.monitored))
	for b := range n.monitored {
		out = append(out, b)
	}
	return out
}

// encodeEvent is e's JSON object with "type" and "seq" appended, so that a
// StateChange keeps its own fields as they are, first. An event whose form has
// its own "type" keeps it, unless it is empty or null: then it becomes the
// EventType, so that every message names its kind.
func encodeEvent(seq uint64, e events.Event) ([]byte, error) {
	body, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	body = bytes.TrimSpace(body)
	if len(body) < 2 || body[0] != '{' {
		return nil, fmt.Errorf("admin: event %s is not a JSON object", e.EventType())
	}
	typ, err := json.Marshal(e.EventType())
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(body)+len(typ)+32)
	start, end, val, found := topLevel(body, "type")
	switch {
	case !found:
		out = append(out, body[:len(body)-1]...)
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(append(out, `"type":`...), typ...)
	case string(val) == `""` || string(val) == "null":
		out = append(out, body[:start]...)
		out = append(append(out, ':'), typ...)
		out = append(out, body[end:len(body)-1]...)
	default:
		out = append(out, body[:len(body)-1]...)
	}
	out = append(out, ',')
	out = strconv.AppendUint(append(out, `"seq":`...), seq, 10)
	return append(out, '}'), nil
}

// topLevel finds key among the top-level keys of the JSON object obj: its
// value is val, and obj[start:end] is the colon and the value.
func topLevel(obj []byte, key string) (start, end int, val json.RawMessage, found bool) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return 0, 0, nil, false
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return 0, 0, nil, false
		}
		start := int(dec.InputOffset())
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return 0, 0, nil, false
		}
		if k, _ := t.(string); k == key {
			return start, int(dec.InputOffset()), v, true
		}
	}
	return 0, 0, nil, false
}
