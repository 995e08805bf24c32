package core

import (
	"context"
	"time"
)

// adaptiveWaiter is one call of Acquire queued for a slot.
type adaptiveWaiter struct {
	ready      chan struct{} // buffered 1: a slot has been handed over
	granted    bool          // set under the limiter's mutex
	epoch      uint32
	level      int
	prev, next *adaptiveWaiter
}

// adaptiveQueue is the first-come-first-served queue of one priority level.
type adaptiveQueue struct{ head, tail *adaptiveWaiter }

// wait queues a call of level lv and blocks until it is handed a slot, the
// queue timeout passes or ctx ends.
func (l *AdaptiveLimiter) wait(ctx context.Context, lv int) (AdaptivePermit, error) {
	l.mu.Lock()
	if int64(l.queued) >= l.maxQueue.Load() {
		l.mu.Unlock()
		return AdaptivePermit{}, l.refuse(lv)
	}
	if l.mask.Load()>>lv == 0 {
		// Nobody of this priority or above waits: a slot freed since the
		// first try is ours. Retrying after setting our bit means that a
		// release we miss here sees the bit and hands its slot over.
		l.mask.Store(l.mask.Load() | 1<<lv)
		if l.take(lv) {
			l.setMask()
			l.mu.Unlock()
			return AdaptivePermit{l: l, epoch: l.epoch.Load()}, nil
		}
	}
	// Waiters are not pooled: a channel must not outlive the
	// testing/synctest bubble that made it, and queueing allocates a timer
	// anyway.
	w := &adaptiveWaiter{ready: make(chan struct{}, 1), level: lv}
	l.push(w)
	l.mu.Unlock()

	t := l.clock.NewTimer(time.Duration(l.timeout.Load()))
	var err error
	select {
	case <-w.ready:
		t.Stop()
		return AdaptivePermit{l: l, epoch: w.epoch}, nil
	case <-t.C():
		err = l.errShed.Load()
	case <-ctx.Done():
		t.Stop()
		err = ctx.Err()
	}
	l.mu.Lock()
	if w.granted {
		// The slot was handed over as the wait ended: keep it, so that
		// every call has exactly one outcome.
		l.mu.Unlock()
		<-w.ready
		return AdaptivePermit{l: l, epoch: w.epoch}, nil
	}
	l.remove(w)
	l.mu.Unlock()
	if err == ctx.Err() {
		return AdaptivePermit{}, err
	}
	return AdaptivePermit{}, l.refuse(lv)
}

// handoff hands free slots to queued calls, highest priority first and in
// order within a priority.
func (l *AdaptiveLimiter) handoff() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for lv := maxPriorityLevels - 1; lv >= 0; lv-- {
		q := &l.queues[lv]
		for q.head != nil {
			// Shares do not decrease with priority: a level that gets no
			// slot means that none below it would.
			if !l.take(lv) {
				l.setMask()
				return
			}
			w := q.head
			l.remove(w)
			w.granted = true
			w.epoch = l.epoch.Load()
			w.ready <- struct{}{}
		}
	}
	l.setMask()
}

// setMask publishes which levels have calls queued. Called with mu held.
func (l *AdaptiveLimiter) setMask() {
	var m uint64
	for lv := range l.queues {
		if l.queues[lv].head != nil {
			m |= 1 << lv
		}
	}
	l.mask.Store(m)
}

// push appends w to its level's queue. Called with mu held.
func (l *AdaptiveLimiter) push(w *adaptiveWaiter) {
	q := &l.queues[w.level]
	w.prev = q.tail
	if q.tail != nil {
		q.tail.next = w
	} else {
		q.head = w
	}
	q.tail = w
	l.queued++
	l.queuedHint.Store(int64(l.queued))
	l.waits.Add(1)
	l.mask.Store(l.mask.Load() | 1<<w.level)
}

// remove unlinks w from its level's queue. Called with mu held.
func (l *AdaptiveLimiter) remove(w *adaptiveWaiter) {
	q := &l.queues[w.level]
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		q.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		q.tail = w.prev
	}
	w.prev, w.next = nil, nil
	l.queued--
	l.queuedHint.Store(int64(l.queued))
	l.setMask()
}
