package store

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
)

// These tests run the store's goroutines and timers in a synctest bubble,
// against clients whose dialer never reaches a network: time is the
// bubble's, so an outage of ten minutes takes none.

// bubbleStore starts a store in the bubble on a client that dials with
// dial, and a Manager on a fake clock (the breakers' time is not under
// test). Everything stops before the bubble ends.
func bubbleStore(t *testing.T, dial func(context.Context, string, string) (net.Conn, error), rc RedisConfig) (*RedisStore, *core.Manager, *recorder) {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr: "192.0.2.10:6379", Dialer: dial, ContextTimeoutEnabled: true, // an IP: NewClient resolves names
		DialTimeout: time.Second, MaxRetries: -1, DialerRetries: 1,
	})
	m, err := core.NewManager(core.ManagerConfig{Clock: core.NewFakeClock(time.Now())})
	if err != nil {
		t.Fatal(err)
	}
	rec := record(m.Bus())
	rc.Client = c
	s, err := NewRedisStore(rc)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AttachManager(m); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Error(err)
		}
		rec.stop()
		_ = c.Close()
		// go-redis probes a pool that cannot dial once a second, until
		// it sees the pool closed: one dial (at most DialTimeout) and a
		// second later it has.
		time.Sleep(3 * time.Second)
	})
	return s, m, rec
}

func TestRedisOutageIsLoggedOnceInABubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var dials atomic.Int64
		dial := func(context.Context, string, string) (net.Conn, error) {
			dials.Add(1)
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "redis.internal", IsNotFound: true}}
		}
		logs := &logRecorder{}
		s, m, rec := bubbleStore(t, dial, RedisConfig{Logger: slog.New(logs)})
		if _, err := breakerOf(m, "api"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Minute)
		synctest.Wait()

		if s.healthy.Load() {
			t.Fatal("healthy without Redis")
		}
		if n := logs.count(slog.LevelWarn, "Redis unavailable (DNS: no such host redis.internal)"); n != 1 || len(logs.all()) != 1 {
			t.Errorf("%d outage warnings in 10 minutes, want 1 and nothing else:\n%s", n, logs.dump())
		}
		degraded := func(e events.Event) bool {
			st, ok := e.(events.StoreStatus)
			return ok && st.Status == events.StoreDegraded && strings.HasPrefix(st.Error, "DNS: no such host redis.internal: ")
		}
		if n := rec.count(degraded); n != 1 || rec.count(isStatus(events.StoreDegraded)) != 1 {
			t.Errorf("%d degraded events naming the cause:\n%s", n, rec.dump())
		}
		// Reconnection backs off: 1s, 2s, 4s, ... then every 30s (±10%),
		// about 24 attempts in 10 minutes, not one a second.
		if n := s.attempts.Load(); n < 18 || n > 30 {
			t.Errorf("%d reconnection attempts in 10 minutes", n)
		}
		t.Logf("%d reconnection attempts, %d dials (the subscription retries too)", s.attempts.Load(), dials.Load())
	})
}

// Close returns when its context ends, even with every call to Redis
// hanging, and the store's goroutines end right after.
func TestRedisCloseHonoursContextInABubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hang := func(ctx context.Context, _, _ string) (net.Conn, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		s, m, _ := bubbleStore(t, hang, RedisConfig{OpTimeout: time.Minute})
		b, err := breakerOf(m, "api")
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the worker is stuck loading the endpoint's shared state
		b.Trip("a transition Close owes")
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		err = s.Close(ctx)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 100*time.Millisecond {
			t.Fatalf("Close: %v after %v, want the context's error after 100ms", err, time.Since(start))
		}
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("second Close: %v", err)
		}
		synctest.Wait()
		if st := b.State(); st != events.Open {
			t.Errorf("breaker %s after Close", st)
		}
	})
}
