package store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"slices"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwark-go/bulwark/events"
)

// While Redis is unreachable the store runs on local state and says so
// once: one warning and one StoreStatus "degraded" event naming the cause
// in words, then nothing until Redis answers again, then one info line and
// one "recovered" event. Reconnection attempts back off exponentially up
// to RedisConfig.MaxReconnectBackoff.

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
		ep.agg.active = false
	}
	if s.announcedDown {
		return // still the same outage: a reconnection failed at once
	}
	s.announcedDown = true
	cause, detail := s.explain(err)
	s.log.Warn("bulwark: redis store: Redis unavailable ("+cause+"); breakers continue on local state",
		"cause", cause, "error", detail)
	s.publish(events.StoreStatus{
		Type: events.TypeStoreStatus, Store: "redis", Instance: s.cfg.InstanceID,
		Status: events.StoreDegraded, Error: cause + ": " + detail, Timestamp: s.clock.Now().UTC(),
	})
}

// reconnect pings Redis once its backoff has passed and, when it answers,
// reconciles every endpoint and announces the recovery.
func (s *RedisStore) reconnect() {
	eps := s.endpoints()
	for _, ep := range eps {
		ep.rep.unlimitProbes() // undo any limit a racing listener set
	}
	if s.clock.Now().Before(s.retryAt) {
		return
	}
	s.attempts.Add(1)
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.OpTimeout)
	err := s.client.Ping(ctx).Err()
	cancel()
	if err != nil {
		s.scheduleRetry()
		return
	}
	s.healthy.Store(true)
	for _, ep := range eps {
		// Probe slots are claimed from Redis again; a half-open breaker
		// asks at once.
		ep.rep.limitProbes(0)
		ep.claimed, ep.wantClaim = 0, ep.b.State() == events.HalfOpen
	}
	s.checkAll = true // what changed while Redis was away moved no counter this store saw
	if err := s.sync(eps, true); err != nil {
		s.degrade(err)
		return
	}
	s.backoff = 0
	s.clusterRound(true) // what changed while Redis was away, and this instance's heartbeat
	if s.announcedDown {
		s.announcedDown = false
		s.log.Info("bulwark: redis store: Redis reachable again; state reconciled")
		s.publish(events.StoreStatus{
			Type: events.TypeStoreStatus, Store: "redis", Instance: s.cfg.InstanceID,
			Status: events.StoreRecovered, Timestamp: s.clock.Now().UTC(),
		})
	}
}

func (s *RedisStore) syncOrDegrade(eps []*redisEndpoint, all bool) {
	if err := s.sync(eps, all); err != nil {
		s.degrade(err)
	}
}

// isConnErr tells a failure to use Redis at all (network, timeout, a
// server that cannot serve, credentials it refuses) from an error reply
// about one command or a malformed reply.
func isConnErr(err error) bool {
	if errors.Is(err, errMalformed) {
		return false // Redis answered, with nonsense
	}
	var re redis.Error
	if errors.As(err, &re) {
		_, unusable := serverRefusal(err)
		return unusable
	}
	return true
}

// serverRefusal names the error replies that mean Redis cannot serve the
// store at all, rather than refusing one command.
func serverRefusal(err error) (string, bool) {
	switch {
	case redis.IsAuthError(err):
		return "authentication failed", true
	case redis.IsPermissionError(err):
		return "permission denied: the ACL user may not run the store's commands", true
	case redis.IsMaxClientsError(err):
		return "Redis refuses more clients (maxclients reached)", true
	case redis.IsOOMError(err):
		return "Redis is out of memory (maxmemory reached)", true
	case redis.IsLoadingError(err):
		return "Redis is loading its data set", true
	case redis.IsReadOnlyError(err):
		return "the node is a read-only replica", true
	case redis.IsClusterDownError(err):
		return "the Redis Cluster is down", true
	case redis.IsMasterDownError(err):
		return "the replica has lost its master", true
	case redis.IsTryAgainError(err):
		return "the Redis Cluster is moving the keys", true
	case redis.IsNoReplicasError(err):
		return "not enough replicas", true
	case redis.HasErrorPrefix(err, "BUSY"):
		return "Redis is busy running a script", true
	}
	return "", false
}

// failureCause names in words why a call to Redis failed. specific is
// false when all err tells is that time ran out.
func failureCause(err error) (cause string, specific bool) {
	var (
		dns       *net.DNSError
		record    tls.RecordHeaderError
		alert     tls.AlertError
		verify    *tls.CertificateVerificationError
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
	)
	if c, ok := serverRefusal(err); ok {
		return c, true
	}
	switch {
	case errors.Is(err, redis.ErrClosed):
		return "the Redis client is closed", true
	case errors.As(err, &dns):
		if dns.IsNotFound {
			return "DNS: no such host " + dns.Name, true
		}
		return "DNS lookup of " + dns.Name + " failed", true
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused", true
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection reset", true
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "host unreachable", true
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable", true
	case errors.As(err, &record), errors.As(err, &alert), errors.As(err, &verify),
		errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &invalid):
		return "TLS handshake failed", true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the server closed the connection", true
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return "timeout", false
	}
	return "error", false
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// explain says why err, the failure that started an outage, happened:
// its cause in words, and the error that shows it. go-redis retries a
// failed dial until the call's time runs out, so that often all err says
// is "context deadline exceeded"; the store then opens one connection to
// Redis itself, the way the client does, and reports what that meets.
func (s *RedisStore) explain(err error) (cause, detail string) {
	cause, specific := failureCause(err)
	if specific {
		return cause, err.Error()
	}
	dial, network, addrs := clientDialer(s.client)
	if dial == nil || len(addrs) == 0 {
		if cause == "timeout" {
			return "timeout", fmt.Sprintf("no reply within %v (%v)", s.cfg.OpTimeout, err)
		}
		return cause, err.Error()
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.OpTimeout)
	defer cancel()
	for _, addr := range addrs {
		conn, derr := dial(ctx, network, addr)
		if derr != nil {
			if c, ok := failureCause(derr); ok {
				return c, derr.Error()
			}
			return "timeout", fmt.Sprintf("no connection to %s within %v (%v)", addr, s.cfg.OpTimeout, derr)
		}
		_ = conn.Close()
	}
	if cause == "timeout" {
		return "timeout", fmt.Sprintf("%s accepts connections but Redis did not reply within %v (hung or overloaded; %v)",
			addrs[0], s.cfg.OpTimeout, err)
	}
	return cause, err.Error()
}

// clientDialer returns how c opens a connection and to which addresses,
// or a nil dial for a client type it does not know.
func clientDialer(c redis.UniversalClient) (dial func(context.Context, string, string) (net.Conn, error), network string, addrs []string) {
	orDefault := func(d func(context.Context, string, string) (net.Conn, error), timeout time.Duration, tc *tls.Config) func(context.Context, string, string) (net.Conn, error) {
		if d != nil {
			return d
		}
		nd := &net.Dialer{Timeout: timeout}
		if tc != nil {
			return (&tls.Dialer{NetDialer: nd, Config: tc}).DialContext
		}
		return nd.DialContext
	}
	switch c := c.(type) {
	case *redis.Client:
		o := c.Options()
		return orDefault(o.Dialer, o.DialTimeout, o.TLSConfig), o.Network, []string{o.Addr}
	case *redis.ClusterClient:
		o := c.Options()
		return orDefault(o.Dialer, o.DialTimeout, o.TLSConfig), "tcp", o.Addrs
	case *redis.Ring:
		o := c.Options()
		return orDefault(o.Dialer, o.DialTimeout, o.TLSConfig), "tcp", slices.Sorted(maps.Values(o.Addrs))
	}
	return nil, "", nil
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
