package store

import (
	"time"

	"github.com/redis/go-redis/v9"
)

// remoteMessage is a message from one of the store's channels.
type remoteMessage struct {
	settings bool // from the settings channel
	faults   bool // from the fault experiments' channel
	payload  []byte
}

// subscribe follows the transition, settings and fault channels, reconnecting
// with backoff.
// After every (re)subscription it asks the worker for a full sync, since
// pub/sub delivers nothing that was sent while it was away.
func (s *RedisStore) subscribe() {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		ps := s.client.Subscribe(s.subCtx, s.channel, s.settingsChannel, s.faultsChannel)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = ps.Close()
			return
		}
		s.pubsub = ps
		s.mu.Unlock()
		subscribed := s.receive(ps)
		_ = ps.Close()
		s.mu.Lock()
		s.pubsub = nil
		s.mu.Unlock()
		if s.subCtx.Err() != nil {
			return
		}
		if subscribed {
			backoff = 0
		}
		backoff = min(max(2*backoff, s.cfg.SyncInterval), s.cfg.MaxReconnectBackoff)
		t := s.clock.NewTimer(backoff)
		select {
		case <-s.subCtx.Done():
			t.Stop()
			return
		case <-t.C():
		}
	}
}

// receive reads from ps until it fails, and reports whether it was
// subscribed at some point.
func (s *RedisStore) receive(ps *redis.PubSub) (subscribed bool) {
	timeout := min(max(10*s.cfg.SyncInterval, time.Second), 30*time.Second)
	idle := 0
	for {
		msg, err := ps.ReceiveTimeout(s.subCtx, timeout)
		if err != nil {
			if s.subCtx.Err() != nil || !isTimeout(err) || idle >= 2 {
				return subscribed
			}
			// Quiet channel or dead link: a ping tells them apart.
			idle++
			if ps.Ping(s.subCtx) != nil {
				return subscribed
			}
			continue
		}
		idle = 0
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				subscribed = true
				select {
				case s.resync <- struct{}{}:
				default:
				}
			}
		case *redis.Message:
			select {
			case s.remote <- remoteMessage{settings: m.Channel == s.settingsChannel, faults: m.Channel == s.faultsChannel, payload: []byte(m.Payload)}:
			default:
				// The worker is behind: drop, and let a sync catch up.
				select {
				case s.resync <- struct{}{}:
				default:
				}
			}
		}
	}
}
