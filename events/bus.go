package events

import (
	"sync"
	"sync/atomic"
)

// Subscription buffer sizes: see Subscribe.
const (
	defaultBuffer = 256
	maxBuffer     = 1 << 16
)

// Bus fans events out to subscribers. Publish never blocks: each subscriber
// has a bounded buffer, and an event that does not fit is dropped for that
// subscriber alone and counted on its Subscription.
//
// The zero Bus is ready to use. A Bus starts no goroutines.
type Bus struct {
	mu   sync.RWMutex
	subs []*Subscription
}

// NewBus returns an empty Bus.
func NewBus() *Bus { return &Bus{} }

// Subscribe registers a new subscriber whose channel holds up to buffer
// events: 256 when buffer <= 0, at most 65,536 (a larger buffer is cut to
// that).
func (b *Bus) Subscribe(buffer int) *Subscription {
	if buffer <= 0 {
		buffer = defaultBuffer
	}
	buffer = min(buffer, maxBuffer)
	s := &Subscription{bus: b, ch: make(chan Event, buffer)}
	b.mu.Lock()
	b.subs = append(b.subs, s)
	b.mu.Unlock()
	return s
}

// Publish delivers e to every subscriber that has room for it. It never
// blocks and runs no subscriber code.
func (b *Bus) Publish(e Event) {
	b.mu.RLock()
	for _, s := range b.subs {
		select {
		case s.ch <- e:
		default:
			s.dropped.Add(1)
		}
	}
	b.mu.RUnlock()
}

func (b *Bus) remove(s *Subscription) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, x := range b.subs {
		if x == s {
			last := len(b.subs) - 1
			b.subs[i] = b.subs[last]
			b.subs[last] = nil
			b.subs = b.subs[:last]
			close(s.ch)
			return true
		}
	}
	return false
}

// Subscription is one subscriber's view of a Bus.
type Subscription struct {
	bus     *Bus
	ch      chan Event
	dropped atomic.Uint64
}

// C returns the channel events arrive on. It is closed by Close.
func (s *Subscription) C() <-chan Event { return s.ch }

// Dropped returns how many events were lost because the buffer was full.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close unsubscribes and closes the channel. Events still buffered can be
// drained after Close. Calling Close again does nothing.
func (s *Subscription) Close() { s.bus.remove(s) }
