package core

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

func newTestPerUser(t testing.TB, cfg PerUserConfig, clock Clock) *PerUserBulkhead {
	t.Helper()
	cfg.Clock = clock
	p, err := NewPerUserBulkhead(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// sweep evicts every user idle for at least IdleTimeout, one shard at a
// time, and returns how many it evicted: what eviction on insert does to a
// sample of a shard, done to all of them.
func sweep(p *PerUserBulkhead) int {
	now := p.clock.Nanotime()
	n := 0
	for i := range p.shards {
		sh := &p.shards[i]
		sh.mu.Lock()
		n += p.expire(sh, now, -1)
		sh.mu.Unlock()
	}
	return n
}

func mustUser(t *testing.T, p *PerUserBulkhead, user string) Guard {
	t.Helper()
	g, err := p.TryAcquire(user)
	if err != nil {
		t.Fatalf("TryAcquire(%q): %v", user, err)
	}
	return g
}

func TestPerUserConfigNamesTheField(t *testing.T) {
	valid := []PerUserConfig{
		{},
		{MaxUsers: 1, Shards: 1, TopN: 1, IdleTimeout: time.Millisecond},
		{MaxUsers: 3, Shards: 64}, // Shards is lowered to fit
		{Bulkhead: BulkheadConfig{MaxQueueSize: NoQueue}},
	}
	for _, c := range valid {
		if _, err := NewPerUserBulkhead(c); err != nil {
			t.Errorf("%+v: unexpected error %v", c, err)
		}
	}
	invalid := []struct {
		cfg   PerUserConfig
		field string
	}{
		{PerUserConfig{MaxUsers: -1}, "MaxUsers"},
		{PerUserConfig{MaxUsers: 100_000_001}, "MaxUsers"},
		{PerUserConfig{IdleTimeout: -time.Minute}, "IdleTimeout"},
		{PerUserConfig{TopN: 10_001}, "TopN"},
		{PerUserConfig{Shards: 48}, "Shards"},
		{PerUserConfig{Shards: -64}, "Shards"},
		{PerUserConfig{Shards: 1 << 17}, "Shards"},
		{PerUserConfig{Bulkhead: BulkheadConfig{MaxConcurrentRequests: -3}}, "Bulkhead.MaxConcurrentRequests"},
		{PerUserConfig{Bulkhead: BulkheadConfig{QueueTimeout: -time.Second}}, "Bulkhead.QueueTimeout"},
		{PerUserConfig{Bulkhead: BulkheadConfig{RetryAfter: 2 * time.Hour}}, "Bulkhead.RetryAfter"},
	}
	for _, tc := range invalid {
		p, err := NewPerUserBulkhead(tc.cfg)
		want := "core.PerUserConfig." + tc.field
		ces := configErrors(err)
		if p != nil || len(ces) != 1 || ces[0].Field != want || !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%+v: got %v, want one *ConfigError for %s", tc.cfg, err, want)
		}
	}
	clock := fakeClock()
	p := newTestPerUser(t, PerUserConfig{MaxUsers: 3}, clock)
	c := p.cfg
	if c.Shards != 2 || c.TopN != 20 || c.IdleTimeout != 5*time.Minute || c.Bulkhead.MaxConcurrentRequests != 100 ||
		c.Bulkhead.MaxQueueSize != 10 || c.Bulkhead.QueueTimeout != 5*time.Second || c.Bulkhead.RetryAfter != time.Second ||
		c.Clock != clock || c.Bulkhead.Clock != clock {
		t.Fatalf("config %+v", c)
	}
	if c := newTestPerUser(t, PerUserConfig{}, clock).cfg; c.MaxUsers != 10_000 || c.Shards != 64 {
		t.Fatalf("defaults %+v", c)
	}
}

// A per-user refusal is a *RejectedError with the configured RetryAfter,
// and never carries the user ID.
func TestPerUserRejectionIsARejectedError(t *testing.T) {
	p := newTestPerUser(t, PerUserConfig{Bulkhead: BulkheadConfig{MaxConcurrentRequests: 1, MaxQueueSize: NoQueue, RetryAfter: 2 * time.Second}}, fakeClock())
	g := mustUser(t, p, "alice@example.com")
	defer g.Release()
	_, err := p.TryAcquire("alice@example.com")
	var re *RejectedError
	if !errors.As(err, &re) || !errors.Is(err, ErrBulkheadFull) || re.RetryAfter() != 2*time.Second {
		t.Fatalf("refusal %v", err)
	}
	if strings.Contains(err.Error(), "alice") || re.Endpoint != "" {
		t.Fatalf("the refusal %q names the user", err)
	}
	if _, again := p.Acquire(context.Background(), "alice@example.com"); again != err {
		t.Fatal("a second refusal is a new value")
	}
	// The sentinels of the user table are plain errors.
	if _, err := p.TryAcquire(""); err != ErrInvalidUserID {
		t.Fatalf("empty user ID: %v", err)
	}
}

func TestPerUserIsolation(t *testing.T) {
	p := newTestPerUser(t, PerUserConfig{Bulkhead: BulkheadConfig{MaxConcurrentRequests: 2, MaxQueueSize: NoQueue}}, fakeClock())
	a1, a2 := mustUser(t, p, "alice"), mustUser(t, p, "alice")
	if _, err := p.TryAcquire("alice"); !errors.Is(err, ErrBulkheadFull) {
		t.Fatalf("alice's third slot: %v, want ErrBulkheadFull", err)
	}
	if _, err := p.Acquire(context.Background(), "alice"); !errors.Is(err, ErrBulkheadFull) {
		t.Fatalf("alice's third slot with no queue: %v, want ErrBulkheadFull", err)
	}
	b1 := mustUser(t, p, "bob") // alice's load does not touch bob
	st, ok := p.UserStats("alice")
	if !ok || st.Active != 2 || st.Rejected != 2 || st.Total != 4 || st.MaxConcurrent != 2 {
		t.Fatalf("alice: %+v %v", st, ok)
	}
	a1.Release()
	a2.Release()
	a2.Release()
	b1.Release()
	if st, _ := p.UserStats("alice"); st.Active != 0 {
		t.Fatalf("alice active %d after release", st.Active)
	}
	if _, ok := p.UserStats("carol"); ok {
		t.Fatal("UserStats for a user never seen")
	}
	all := p.Stats()
	if all.Users != 2 || all.All.Rejected != 2 || all.All.Admitted != 3 || all.All.Total != 5 || all.All.Active != 0 {
		t.Fatalf("aggregate %+v", all)
	}
}

func TestPerUserInvalidUserID(t *testing.T) {
	p := newTestPerUser(t, PerUserConfig{}, fakeClock())
	for _, id := range []string{"", strings.Repeat("x", maxUserIDLen+1)} {
		if _, err := p.TryAcquire(id); !errors.Is(err, ErrInvalidUserID) {
			t.Errorf("TryAcquire(%d bytes) = %v", len(id), err)
		}
		if _, err := p.Acquire(context.Background(), id); !errors.Is(err, ErrInvalidUserID) {
			t.Errorf("Acquire(%d bytes) = %v", len(id), err)
		}
	}
	g := mustUser(t, p, strings.Repeat("x", maxUserIDLen))
	g.Release()
	if p.Stats().Users != 1 {
		t.Fatalf("%d users tracked", p.Stats().Users)
	}
}

// TestPerUserCopiesUserID checks that the table keeps its own copy of a user
// ID, not the caller's memory (a request buffer, say).
func TestPerUserCopiesUserID(t *testing.T) {
	p := newTestPerUser(t, PerUserConfig{}, fakeClock())
	buf := []byte("alice")
	g := mustUser(t, p, unsafe.String(&buf[0], len(buf)))
	g.Release()
	copy(buf, "mallo")
	if _, ok := p.UserStats("alice"); !ok {
		t.Fatal("alice lost when the caller reused its buffer")
	}
	if top := p.TopUsers(); len(top) != 1 || top[0].User != "alice" {
		t.Fatalf("TopUsers = %+v", top)
	}
}

func TestPerUserTooManyUsers(t *testing.T) {
	p := newTestPerUser(t, PerUserConfig{MaxUsers: 2, Shards: 1}, fakeClock())
	a, b := mustUser(t, p, "a"), mustUser(t, p, "b")
	if _, err := p.TryAcquire("c"); !errors.Is(err, ErrTooManyUsers) {
		t.Fatalf("third user while both hold slots: %v, want ErrTooManyUsers", err)
	}
	if _, err := p.Acquire(context.Background(), "c"); !errors.Is(err, ErrTooManyUsers) {
		t.Fatalf("third user: %v, want ErrTooManyUsers", err)
	}
	// Known users are unaffected.
	a2 := mustUser(t, p, "a")
	a2.Release()
	a.Release()
	// a is idle now, so c takes its place; b, still busy, stays.
	c := mustUser(t, p, "c")
	if _, ok := p.UserStats("a"); ok {
		t.Fatal("a is still tracked")
	}
	if _, ok := p.UserStats("b"); !ok {
		t.Fatal("b, holding a slot, was evicted")
	}
	st := p.Stats()
	if st.Users != 2 || st.TooManyUsers != 2 || st.Evicted != 1 || st.All.Admitted != 4 || st.All.Active != 2 {
		t.Fatalf("stats %+v", st)
	}
	b.Release()
	c.Release()
}

func TestPerUserEvictsLeastRecentlyUsed(t *testing.T) {
	clock := fakeClock()
	// No more users than the eviction sample, so that the choice is exact.
	p := newTestPerUser(t, PerUserConfig{MaxUsers: evictSample - 1, Shards: 1}, clock)
	for _, u := range []string{"old", "mid", "new"} {
		g := mustUser(t, p, u)
		clock.Advance(time.Second)
		g.Release()
	}
	g := mustUser(t, p, "next")
	g.Release()
	if _, ok := p.UserStats("old"); ok {
		t.Fatal("the least recently used user was kept")
	}
	for _, u := range []string{"mid", "new", "next"} {
		if _, ok := p.UserStats(u); !ok {
			t.Fatalf("%s was evicted", u)
		}
	}
}

func TestPerUserIdleSweep(t *testing.T) {
	clock := fakeClock()
	p := newTestPerUser(t, PerUserConfig{IdleTimeout: time.Minute}, clock)
	for i := range 10 {
		g := mustUser(t, p, "idle-"+strconv.Itoa(i))
		g.Release()
	}
	busy := mustUser(t, p, "busy")
	// A queued user is busy too.
	q := newTestPerUser(t, PerUserConfig{IdleTimeout: time.Minute, Bulkhead: BulkheadConfig{MaxConcurrentRequests: 1}}, clock)
	qHeld := mustUser(t, q, "queued")
	qDone := make(chan error, 1)
	go func() {
		g, err := q.Acquire(context.Background(), "queued")
		g.Release()
		qDone <- err
	}()
	if !clock.WaitForTimers(1, timerWait) {
		t.Fatal("never queued")
	}
	qHeld.Release() // hands the slot to the waiter, which may still hold it

	clock.Advance(59 * time.Second)
	if n := sweep(p); n != 0 {
		t.Fatalf("sweep before IdleTimeout evicted %d", n)
	}
	clock.Advance(time.Second)
	if n := sweep(p); n != 10 {
		t.Fatalf("sweep evicted %d, want the 10 idle users", n)
	}
	if p.Stats().Users != 1 {
		t.Fatalf("%d users tracked, want only the busy one", p.Stats().Users)
	}
	busy.Release()
	if err := <-qDone; err != nil {
		t.Fatal(err)
	}
	// Idle time runs from the last release.
	clock.Advance(59 * time.Second)
	if n := sweep(p); n != 0 {
		t.Fatalf("evicted %d users released under IdleTimeout ago", n)
	}
	clock.Advance(time.Second)
	if n := sweep(p); n != 1 || p.Stats().Users != 0 {
		t.Fatalf("sweep evicted %d, %d users left", n, p.Stats().Users)
	}
	st := p.Stats()
	if st.Evicted != 11 || st.All.Admitted != 11 || st.All.Total != 11 {
		t.Fatalf("counters of evicted users lost: %+v", st)
	}
}

func TestPerUserRemoveUser(t *testing.T) {
	p := newTestPerUser(t, PerUserConfig{}, fakeClock())
	g := mustUser(t, p, "u")
	if p.RemoveUser("u") {
		t.Fatal("removed a user holding a slot")
	}
	g.Release()
	if !p.RemoveUser("u") {
		t.Fatal("did not remove an idle user")
	}
	if p.RemoveUser("u") || p.RemoveUser("never") {
		t.Fatal("removed a user that is not tracked")
	}
	if _, ok := p.UserStats("u"); ok {
		t.Fatal("removed user still has stats")
	}
	if st := p.Stats(); st.Users != 0 || st.All.Admitted != 1 || st.Evicted != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPerUserQueueTimeout(t *testing.T) {
	clock := fakeClock()
	p := newTestPerUser(t, PerUserConfig{Bulkhead: BulkheadConfig{MaxConcurrentRequests: 1, QueueTimeout: time.Second}}, clock)
	held := mustUser(t, p, "u")
	defer held.Release()
	errc := make(chan error, 1)
	go func() {
		_, err := p.Acquire(context.Background(), "u")
		errc <- err
	}()
	if !clock.WaitForTimers(1, timerWait) {
		t.Fatal("never queued")
	}
	if _, err := p.TryAcquire("u"); !errors.Is(err, ErrBulkheadFull) {
		t.Fatalf("TryAcquire past a queue: %v", err)
	}
	clock.Advance(time.Second)
	if err := <-errc; !errors.Is(err, ErrBulkheadTimeout) {
		t.Fatalf("Acquire = %v, want ErrBulkheadTimeout", err)
	}
	if st, _ := p.UserStats("u"); st.TimedOut != 1 || st.QueueTime.Count != 1 {
		t.Fatalf("stats %+v", st)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Acquire(ctx, "u"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire with an ended context = %v", err)
	}
}

func TestPerUserDisabled(t *testing.T) {
	p := newTestPerUser(t, PerUserConfig{Bulkhead: BulkheadConfig{Disabled: true, MaxConcurrentRequests: 1}}, fakeClock())
	for range 10 {
		g, err := p.Acquire(context.Background(), "u")
		if err != nil {
			t.Fatal(err)
		}
		defer g.Release()
	}
	if p.Stats().Users != 0 {
		t.Fatal("a disabled per-user bulkhead tracked users")
	}
}

func TestPerUserTopUsers(t *testing.T) {
	p := newTestPerUser(t, PerUserConfig{TopN: 3}, fakeClock())
	var held []Guard
	for i := range 6 {
		u := "u" + strconv.Itoa(i)
		for range i {
			held = append(held, mustUser(t, p, u))
		}
		if i == 0 {
			g := mustUser(t, p, u)
			g.Release()
		}
	}
	top := p.TopUsers()
	var got []string
	for _, u := range top {
		got = append(got, fmt.Sprintf("%s:%d", u.User, u.Stats.Active))
	}
	if strings.Join(got, " ") != "u5:5 u4:4 u3:3" {
		t.Fatalf("TopUsers = %v", got)
	}
	for i := range held {
		held[i].Release()
	}
	// With nobody active, calls seen decide.
	top = p.TopUsers()
	if len(top) != 3 || top[0].User != "u5" || top[0].Stats.Admitted != 5 {
		t.Fatalf("TopUsers when idle = %+v", top)
	}
	empty := newTestPerUser(t, PerUserConfig{}, fakeClock())
	if top := empty.TopUsers(); len(top) != 0 {
		t.Fatalf("TopUsers of an empty table = %v", top)
	}
}

// TestPerUserStress runs many goroutines over more users than the table
// holds, so that users are evicted and re-added while others hold slots.
func TestPerUserStress(t *testing.T) {
	const (
		users, perUser, workers = 200, 2, 32
	)
	iters := 2000
	if testing.Short() {
		iters = 300
	}
	p := newTestPerUser(t, PerUserConfig{
		MaxUsers: 64, Shards: 8, IdleTimeout: time.Millisecond,
		Bulkhead: BulkheadConfig{MaxConcurrentRequests: perUser, MaxQueueSize: 2, QueueTimeout: 20 * time.Millisecond},
	}, SystemClock())
	var inside [users]atomic.Int32
	var ok, failed, tooMany atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range iters {
				u := (w*131 + i*17) % users
				id := "user-" + strconv.Itoa(u)
				var g Guard
				var err error
				if i%4 == 0 {
					g, err = p.TryAcquire(id)
				} else {
					g, err = p.Acquire(context.Background(), id)
				}
				switch {
				case errors.Is(err, ErrTooManyUsers):
					tooMany.Add(1)
					continue
				case err != nil:
					failed.Add(1)
					continue
				}
				if n := inside[u].Add(1); n > perUser {
					t.Errorf("%d calls inside %s's bulkhead of %d", n, id, perUser)
				}
				if i%3 == 0 {
					runtime.Gosched()
				}
				inside[u].Add(-1)
				ok.Add(1)
				g.Release()
				switch i % 97 {
				case 0:
					sweep(p)
				case 1:
					p.RemoveUser(id)
				case 2:
					p.TopUsers()
					p.Stats()
				}
			}
		})
	}
	wg.Wait()
	st := p.Stats()
	if st.Users > 64 {
		t.Fatalf("%d users tracked, max 64", st.Users)
	}
	if st.All.Active != 0 || st.All.Queued != 0 {
		t.Fatalf("left busy: %+v", st.All)
	}
	if st.All.Admitted != uint64(ok.Load()) || st.TooManyUsers != uint64(tooMany.Load()) ||
		st.All.Rejected+st.All.TimedOut+st.All.Cancelled != uint64(failed.Load()) {
		t.Fatalf("stats %+v do not add up to %d ok, %d failed, %d too many", st, ok.Load(), failed.Load(), tooMany.Load())
	}
	t.Logf("ok %d, failed %d, too many users %d, evicted %d", ok.Load(), failed.Load(), tooMany.Load(), st.Evicted)
}

// TestPerUserFlood sends a million distinct user IDs through the default
// table and checks that it never tracks more than MaxUsers and that the heap
// stays bounded.
func TestPerUserFlood(t *testing.T) {
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	p := newTestPerUser(t, PerUserConfig{}, SystemClock())
	maxUsers := p.cfg.MaxUsers

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	const workers = 2
	var wg sync.WaitGroup
	var tooMany atomic.Int64
	for w := range workers {
		wg.Go(func() {
			buf := make([]byte, 0, 32)
			for i := w; i < n; i += workers {
				buf = strconv.AppendInt(append(buf[:0], "flood-"...), int64(i), 10)
				g, err := p.TryAcquire(string(buf))
				if err != nil {
					// Only the other worker's in-flight users can be busy.
					tooMany.Add(1)
					continue
				}
				g.Release()
				if i%100_000 == 0 {
					if u := p.Stats().Users; u > maxUsers {
						t.Errorf("after %d users: %d tracked, max %d", i, u, maxUsers)
					}
				}
			}
		})
	}
	wg.Wait()

	runtime.GC()
	runtime.ReadMemStats(&after)
	users := p.Stats().Users
	grew := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("%d distinct users: %d tracked (max %d), %d evicted, %d refused; HeapInuse %+.1f MiB (%.1f MiB -> %.1f MiB)",
		n, users, maxUsers, p.Stats().Evicted, tooMany.Load(),
		float64(grew)/(1<<20), float64(before.HeapInuse)/(1<<20), float64(after.HeapInuse)/(1<<20))
	if users != maxUsers {
		t.Fatalf("%d users tracked after the flood, want the table full at %d", users, maxUsers)
	}
	if tooMany.Load() != 0 {
		t.Fatalf("%d new users refused although every tracked user was idle", tooMany.Load())
	}
	// About 500 bytes per tracked user; a leak of even 64 bytes per
	// flooding user would be 61 MiB.
	if limit := int64(32 << 20); grew > limit {
		t.Fatalf("heap grew by %d bytes for %d tracked users", grew, users)
	}
	runtime.KeepAlive(p)
}

// BenchmarkPerUserBulkheadAcquireRelease takes and releases slots for 10,000
// users that are already tracked, from every CPU at once.
func BenchmarkPerUserBulkheadAcquireRelease(b *testing.B) {
	const users = 10_000
	// Room to spare, so that no shard evicts one of the 10,000.
	p, err := NewPerUserBulkhead(PerUserConfig{MaxUsers: 4 * users})
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, users)
	for i := range ids {
		ids[i] = "user-" + strconv.Itoa(i)
		g, err := p.TryAcquire(ids[i])
		if err != nil {
			b.Fatal(err)
		}
		g.Release()
	}
	ctx := context.Background()
	var worker atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(worker.Add(1)) * 7919
		for pb.Next() {
			i++
			g, err := p.Acquire(ctx, ids[i%users])
			if err != nil {
				b.Error(err)
				return
			}
			g.Release()
		}
	})
	b.StopTimer()
	if n := p.Stats().Users; n != users {
		b.Fatalf("%d users tracked, want %d", n, users)
	}
}

func TestPerUserTrackedUserAllocatesNothing(t *testing.T) {
	p := newTestPerUser(t, PerUserConfig{}, SystemClock())
	ids := []string{"alice", "bob", "carol"}
	for _, id := range ids {
		g := mustUser(t, p, id)
		g.Release()
	}
	ctx := context.Background()
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		i++
		g, err := p.Acquire(ctx, ids[i%len(ids)])
		if err != nil {
			t.Fatal(err)
		}
		g.Release()
		g, _ = p.TryAcquire(ids[i%len(ids)])
		g.Release()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per acquire and release of a tracked user, want 0", allocs)
	}
}
