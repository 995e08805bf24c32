package store

import (
	"context"
	"fmt"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
)

// ForceOpen holds endpoint open on every instance until Reset or Disable,
// whatever its shared state was: an operator's hold, which never lapses
// (unlike a component's, see core.Breaker.Hold). If Redis cannot be reached, the breaker
// of this instance is forced open alone and the error matches
// ErrRedisUnavailable.
func (s *RedisStore) ForceOpen(ctx context.Context, endpoint, reason string) error {
	return s.control(ctx, endpoint, events.ForcedOpen, truncateUTF8(reason, maxReasonLen-len("forced open: ")))
}

// Reset closes endpoint on every instance and clears its shared window.
// Without Redis it resets this instance's breaker alone and the error
// matches ErrRedisUnavailable.
func (s *RedisStore) Reset(ctx context.Context, endpoint string) error {
	return s.control(ctx, endpoint, events.Closed, "")
}

// Disable turns endpoint's breaker off on every instance until Reset.
// Without Redis it disables this instance's breaker alone and the error
// matches ErrRedisUnavailable.
func (s *RedisStore) Disable(ctx context.Context, endpoint string) error {
	return s.control(ctx, endpoint, events.Disabled, "")
}

type adminRequest struct {
	ctx      context.Context
	endpoint string
	to       events.State
	reason   string // ForceOpen's, without the "forced open: " prefix
	reply    chan error
}

func (s *RedisStore) control(ctx context.Context, endpoint string, to events.State, reason string) error {
	if err := core.ValidateEndpoint(endpoint); err != nil {
		return err
	}
	r := &adminRequest{ctx: ctx, endpoint: endpoint, to: to, reason: reason, reply: make(chan error, 1)}
	select {
	case s.admin <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closing:
		return ErrClosed
	}
	select { // the worker replies before it looks at s.closing again
	case err := <-r.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// doControl runs a cluster-wide ForceOpen, Reset or Disable.
func (s *RedisStore) doControl(r *adminRequest) error {
	verb := map[events.State]string{events.ForcedOpen: "force open", events.Closed: "reset", events.Disabled: "disable"}[r.to]
	reason := map[events.State]string{events.ForcedOpen: "forced open: " + r.reason, events.Closed: "reset", events.Disabled: "disabled"}[r.to]
	ep := s.lookup(r.endpoint)
	cause := error(ErrRedisUnavailable)
	if s.healthy.Load() {
		var floor uint64
		var b *core.Breaker
		if ep != nil {
			floor, b = ep.version, ep.b
		}
		ctx, cancel := context.WithTimeout(r.ctx, s.cfg.OpTimeout)
		res, err := s.cas(ctx, r.endpoint, newRedisKeys(s.cfg.KeyPrefix, r.endpoint), b,
			casArgs{expected: -1, to: r.to, reason: reason, floor: floor})
		cancel()
		switch {
		case err == nil && res.won:
			c := localChange{from: res.old, to: r.to, reason: reason, at: s.clock.Now()}
			s.publish(events.ClusterStateChange{
				Type: events.TypeClusterStateChange, Endpoint: r.endpoint, OldState: res.old, NewState: r.to,
				Timestamp: c.at.UTC(), Reason: reason, Version: res.version, Instance: s.cfg.InstanceID,
			})
			if ep != nil {
				ep.version, ep.dirty = res.version, false
				s.setShared(ep, r.to, "", time.Time{})
				ep.rep.applyRemote(core.Snapshot{State: r.to, Reason: reason})
				if r.to != events.ForcedOpen {
					ep.rep.forgetRemoteWindow()
					s.newEpoch(ep, res.version)
				}
			}
			return nil
		case err == nil:
			return fmt.Errorf("bulwark: redis store: %s %q: compare-and-set lost unconditionally", verb, r.endpoint)
		case !isConnErr(err):
			return fmt.Errorf("bulwark: redis store: %s %q: %w", verb, r.endpoint, err)
		}
		s.degrade(err)
		cause = fmt.Errorf("%w: %v", ErrRedisUnavailable, err)
	}
	if ep != nil {
		// The listener queues it as a local decision, reconciled later.
		switch r.to {
		case events.ForcedOpen:
			ep.b.ForceOpen(r.reason)
		case events.Closed:
			ep.b.Reset()
		case events.Disabled:
			ep.b.Disable()
		}
	}
	return fmt.Errorf("bulwark: redis store: %s %q on this instance only: %w", verb, r.endpoint, cause)
}
