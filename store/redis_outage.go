package store

import (
	"errors"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwark-go/bulwark/events"
)

// reportEvery limits how often one endpoint's handled errors are reported,
// so that a corrupt key read every sync does not flood the logs.
const reportEvery = 30 * time.Second

// scheduleRetry doubles the reconnection backoff, with jitter so that a
// fleet does not reconnect in step.
func (s *RedisStore) scheduleRetry() {
	s.backoff = min(max(2*s.backoff, s.cfg.SyncInterval), s.cfg.MaxReconnectBackoff)
	jitter := time.Duration(rand.Int64N(int64(s.backoff)/5 + 1))
	s.retryAt = s.clock.Now().Add(s.backoff - s.backoff/10 + jitter)
}

// degrade switches to local operation after a failed call.
func (s *RedisStore) degrade(err error) {
	if s.ctx.Err() != nil {
		return // closing: the call was cancelled, Redis is fine
	}
	if !s.healthy.Swap(false) {
		return
	}
	s.backoff = 0
	s.scheduleRetry()
	for _, ep := range s.endpoints() {
		ep.rep.unlimitProbes()      // probe on local judgement
		ep.rep.forgetRemoteWindow() // the others' counts are no longer known
	}
	if s.announcedDown {
		return
	}
	s.announcedDown = true
	s.log.Warn("bulwark: redis store: Redis unreachable; breakers continue on local state", "error", err)
	s.publish(events.StoreStatus{
		Type: events.TypeStoreStatus, Store: "redis", Instance: s.cfg.InstanceID,
		Status: events.StoreDegraded, Error: err.Error(), Timestamp: s.clock.Now().UTC(),
	})
}

func (s *RedisStore) syncOrDegrade(eps []*redisEndpoint) {
	if err := s.sync(eps); err != nil {
		s.degrade(err)
	}
}

// isConnErr tells a failure to reach Redis (network, timeout, a server
// that cannot serve) from an error reply about one command.
func isConnErr(err error) bool {
	if errors.Is(err, errMalformed) {
		return false // Redis answered, with nonsense
	}
	var re redis.Error
	if errors.As(err, &re) {
		msg := re.Error()
		for _, p := range [...]string{"LOADING", "READONLY", "CLUSTERDOWN", "MASTERDOWN", "TRYAGAIN", "BUSY", "NOREPLICAS"} {
			if strings.HasPrefix(msg, p) {
				return true
			}
		}
		return false
	}
	return true
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// failed handles the error of a call about ep.
func (s *RedisStore) failed(ep *redisEndpoint, what string, err error) {
	if s.ctx.Err() != nil {
		return // closing
	}
	if isConnErr(err) {
		s.degrade(err)
		return
	}
	s.report(ep, what, err)
}

// report warns about a handled error, at most once per reportEvery per
// endpoint (or for all errors without one).
func (s *RedisStore) report(ep *redisEndpoint, what string, err error) {
	last, name := &s.reportedAt, ""
	if ep != nil {
		last, name = &ep.reportedAt, ep.name
	}
	now := s.clock.Now()
	if !last.IsZero() && now.Sub(*last) < reportEvery {
		return
	}
	*last = now
	s.warn(name, what, err)
}
