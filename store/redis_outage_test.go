package store

import (
	"context"
	"errors"
	"log/slog"
	"math/bits"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
	"github.com/bulwark-go/bulwark/internal/redistest"
	"github.com/bulwark-go/bulwark/internal/wait"
)

// load calls Allow and Report(Success) on a breaker from a few goroutines
// until stopped, counting errors and, while record is set, each call's
// latency in a histogram (no allocation, so the GC adds no noise).
type load struct {
	stop   chan struct{}
	wg     sync.WaitGroup
	errs   atomic.Int64
	record atomic.Bool
	hist   [40]atomic.Int64 // calls by bit length of their latency in ns
	worst  atomic.Int64
}

func startLoad(b *core.Breaker, workers int) *load {
	l := &load{stop: make(chan struct{})}
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				if i%64 == 0 {
					runtime.Gosched() // leave the store's goroutines some CPU on small machines
				}
				t0 := time.Now()
				p, err := b.Allow()
				if err != nil {
					l.errs.Add(1)
					continue
				}
				p.Report(core.Success, 0)
				if l.record.Load() {
					d := int64(time.Since(t0))
					l.hist[min(bits.Len64(uint64(d)), len(l.hist)-1)].Add(1)
					for w := l.worst.Load(); d > w && !l.worst.CompareAndSwap(w, d); w = l.worst.Load() {
					}
				}
			}
		}()
	}
	return l
}

func (l *load) finish() {
	close(l.stop)
	l.wg.Wait()
}

// checkLatency fails when calls made while Redis was down or hung were
// slow: a Redis round trip or timeout on the request path would show in the
// tail (the store's timeout is 250ms here). The bounds are far above
// scheduling noise on a busy machine.
func checkLatency(t *testing.T, loads ...*load) {
	t.Helper()
	var hist [40]int64
	var n, worst int64
	for _, l := range loads {
		for i := range hist {
			hist[i] += l.hist[i].Load()
			n += l.hist[i].Load()
		}
		worst = max(worst, l.worst.Load())
	}
	if n < 1000 {
		t.Fatalf("only %d calls during the outage", n)
	}
	// Upper bound of the bucket holding the 99.9th percentile.
	var seen int64
	var p999 time.Duration
	for i, c := range hist {
		seen += c
		if seen*1000 >= n*999 {
			p999 = time.Duration(1) << i
			break
		}
	}
	t.Logf("%d calls during the outage: p99.9 < %v, max %v", n, p999, time.Duration(worst))
	if p999 > 5*time.Millisecond || worst > int64(200*time.Millisecond) {
		t.Errorf("calls waited during the outage: p99.9 < %v, max %v", p999, time.Duration(worst))
	}
}

func TestRedisKilledMidLoad(t *testing.T) {
	srv := redistest.Start(t)
	rc := RedisConfig{OpTimeout: 250 * time.Millisecond}
	a := newInstance(t, srv, "a", core.BreakerConfig{}, rc)
	b := newInstance(t, srv, "b", core.BreakerConfig{}, rc)
	alertsA, alertsB := a.alerts(t), b.alerts(t)
	for _, name := range []string{"load", "tripped"} {
		a.loaded(t, name)
		b.loaded(t, name)
	}
	la, lb := startLoad(a.breaker(t, "load"), 1), startLoad(b.breaker(t, "load"), 1)
	la.record.Store(true)
	lb.record.Store(true)

	srv.Kill()
	wait.For(t, testWait, "degraded events", func() bool {
		return a.rec.count(isStatus("degraded")) >= 1 && b.rec.count(isStatus("degraded")) >= 1
	})
	// Transitions go on locally, and still raise an event to alert on.
	a.breaker(t, "tripped").Trip("during the outage")
	wait.For(t, testWait, "a local decision", func() bool { return a.rec.count(isLocal("tripped", events.Open)) == 1 })
	settle(t, a) // reconnection attempts fail meanwhile
	if b.breaker(t, "tripped").State() != events.Closed {
		t.Fatal("b learnt of a's trip without Redis")
	}
	if err := a.s.ForceOpen(context.Background(), "forced", "x"); !errors.Is(err, ErrRedisUnavailable) {
		t.Errorf("ForceOpen without Redis: %v", err)
	}

	la.record.Store(false)
	lb.record.Store(false)
	srv.Restart() // empty: nothing was persisted
	wait.For(t, testWait, "recovered events", func() bool {
		return a.s.healthy.Load() && b.s.healthy.Load() && a.rec.count(isStatus("recovered")) >= 1 && b.rec.count(isStatus("recovered")) >= 1
	})
	// a's trip is newer than the (lost) shared state: it is pushed, and b
	// follows.
	bt := b.breaker(t, "tripped")
	wait.For(t, testWait, "b to adopt a's trip", func() bool { return bt.State() == events.Open })
	la.finish()
	lb.finish()
	if n := la.errs.Load() + lb.errs.Load(); n != 0 {
		t.Errorf("%d calls failed", n)
	}
	checkLatency(t, la, lb)
	if n := a.rec.count(isWin("tripped", events.Open)) + b.rec.count(isWin("tripped", events.Open)); n != 0 {
		t.Errorf("the reconciliation raised %d more events for a transition already announced", n)
	}
	// The outage did not silence the alert, nor did the recovery repeat it.
	settle(t, a, b)
	if n := alertsFor(alertsA, "tripped") + alertsFor(alertsB, "tripped"); n != 1 {
		t.Errorf("%d alerts for a trip during the outage, want 1", n)
	}
}

func TestRedisHungServer(t *testing.T) {
	srv := redistest.Start(t)
	rc := RedisConfig{OpTimeout: 250 * time.Millisecond}
	a := newInstance(t, srv, "a", core.BreakerConfig{}, rc)
	b := newInstance(t, srv, "b", core.BreakerConfig{}, rc)
	a.loaded(t, "load")
	b.loaded(t, "load")
	a.loaded(t, "tripped")
	b.loaded(t, "tripped")
	l := startLoad(a.breaker(t, "load"), 1)
	l.record.Store(true)
	srv.Pause()
	wait.For(t, testWait, "a degraded event", func() bool { return a.rec.count(isStatus("degraded")) >= 1 })
	if a.rec.count(degradedSaying("timeout: ")) != 1 || a.rec.count(degradedSaying("did not reply")) != 1 {
		t.Errorf("the degraded event does not say Redis stopped answering:\n%s", a.rec.dump())
	}
	a.breaker(t, "tripped").Trip("while Redis hangs")
	settle(t, a)
	l.record.Store(false)
	srv.Resume()
	wait.For(t, testWait, "a recovered event", func() bool { return a.s.healthy.Load() && a.rec.count(isStatus("recovered")) >= 1 })
	// The shared state survived the pause: a's trip is newer and wins.
	bt := b.breaker(t, "tripped")
	wait.For(t, testWait, "b to adopt a's trip", func() bool { return bt.State() == events.Open })
	l.finish()
	if n := l.errs.Load(); n != 0 {
		t.Errorf("%d calls failed", n)
	}
	checkLatency(t, l)
}

// degradedSaying matches a StoreStatus "degraded" event whose error holds s.
func degradedSaying(s string) func(events.Event) bool {
	return func(e events.Event) bool {
		st, ok := e.(events.StoreStatus)
		return ok && st.Status == events.StoreDegraded && strings.Contains(st.Error, s)
	}
}

// An outage is logged once, with its cause in words, and so is the
// recovery, however many reconnection attempts fail in between. The
// client keeps go-redis's own dial retries, which outlast the store's
// timeout, so that the failed calls say no more than "context deadline
// exceeded".
func TestRedisOutageIsExplainedAndLoggedOnce(t *testing.T) {
	srv := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true, DialTimeout: 250 * time.Millisecond})
	t.Cleanup(func() { _ = c.Close() })
	logs := &logRecorder{}
	in := newInstanceOn(t, c, "a", core.BreakerConfig{}, RedisConfig{OpTimeout: 250 * time.Millisecond, Logger: slog.New(logs)}, nil)
	in.loaded(t, "api")

	srv.Kill()
	wait.For(t, 10*time.Second, "a degraded event", func() bool { return in.rec.count(isStatus(events.StoreDegraded)) > 0 })
	if in.rec.count(degradedSaying("connection refused: ")) != 1 {
		t.Errorf("the degraded event does not say the connection was refused:\n%s", in.rec.dump())
	}
	start := in.s.attempts.Load()
	wait.For(t, 20*time.Second, "three failed reconnection attempts", func() bool { return in.s.attempts.Load() >= start+3 })
	srv.Restart()
	wait.For(t, 20*time.Second, "a recovered event", func() bool { return in.rec.count(isStatus(events.StoreRecovered)) > 0 })
	settle(t, in)

	if n := logs.count(slog.LevelWarn, "Redis unavailable (connection refused)"); n != 1 {
		t.Errorf("%d outage warnings, want 1:\n%s", n, logs.dump())
	}
	if n := logs.count(slog.LevelInfo, "Redis reachable again"); n != 1 {
		t.Errorf("%d recovery lines, want 1:\n%s", n, logs.dump())
	}
	if len(logs.all()) != 2 {
		t.Errorf("more than the outage and its end logged:\n%s", logs.dump())
	}
	if d, r := in.rec.count(isStatus(events.StoreDegraded)), in.rec.count(isStatus(events.StoreRecovered)); d != 1 || r != 1 {
		t.Errorf("%d degraded and %d recovered events, want 1 each", d, r)
	}
}

// Credentials Redis refuses make the store degrade, not wait for Redis:
// breakers judge alone, so a half-open breaker admits its probe.
func TestRedisWrongPasswordIsAnOutage(t *testing.T) {
	srv := redistest.Start(t)
	if err := newTestClient(t, srv).ConfigSet(context.Background(), "requirepass", "secret").Err(); err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), Password: "wrong", ContextTimeoutEnabled: true,
		DialTimeout: 250 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	in := newInstanceOn(t, c, "a", core.BreakerConfig{Timeout: 50 * time.Millisecond}, RedisConfig{}, nil)
	b := in.breaker(t, "api")
	wait.For(t, 10*time.Second, "a degraded event", func() bool { return in.rec.count(isStatus(events.StoreDegraded)) > 0 })
	if in.rec.count(degradedSaying("authentication failed: ")) != 1 || in.s.healthy.Load() {
		t.Errorf("healthy %v; events:\n%s", in.s.healthy.Load(), in.rec.dump())
	}
	b.Trip("down")
	wait.For(t, 10*time.Second, "a half-open probe admitted", func() bool {
		p, err := b.Allow()
		if err == nil {
			p.Report(core.Success, 0)
		}
		return err == nil
	})
}
