package core

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func newTestPerUserLimiter(t *testing.T, cfg PerUserRateLimitConfig) (*PerUserRateLimiter, *FakeClock) {
	t.Helper()
	clk := NewFakeClock(t0)
	cfg.Clock = clk
	l, err := NewPerUserRateLimiter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l, clk
}

func TestPerUserRateLimitConfigErrors(t *testing.T) {
	_, err := NewPerUserRateLimiter(PerUserRateLimitConfig{
		RateLimit: RateLimitConfig{Rate: 1e10, Burst: -5},
		MaxUsers:  -1, IdleTimeout: time.Nanosecond, Shards: 3,
	})
	checkBadFields(t, err, []string{
		"core.PerUserRateLimitConfig.RateLimit.Rate", "core.PerUserRateLimitConfig.RateLimit.Burst",
		"core.PerUserRateLimitConfig.MaxUsers", "core.PerUserRateLimitConfig.IdleTimeout",
		"core.PerUserRateLimitConfig.Shards",
	})
	// Each user's limit is this instance's: it cannot be shared.
	_, err = NewPerUserRateLimiter(PerUserRateLimitConfig{RateLimit: RateLimitConfig{Shared: true}})
	checkBadFields(t, err, []string{"core.PerUserRateLimitConfig.RateLimit.Shared"})
}

func TestPerUserRateLimitIsolatesUsers(t *testing.T) {
	l, clk := newTestPerUserLimiter(t, PerUserRateLimitConfig{RateLimit: RateLimitConfig{Name: "api", Rate: 1, Burst: 2}})
	for range 2 {
		if err := l.Allow("alice"); err != nil {
			t.Fatal(err)
		}
	}
	err := l.Allow("alice")
	if d := retryAfter(t, err); d != time.Second {
		t.Errorf("RetryAfter = %v, want 1s", d)
	}
	if strings.Contains(err.Error(), "alice") {
		t.Errorf("the refusal names the user: %q", err)
	}
	if err := l.Allow("bob"); err != nil {
		t.Errorf("bob is limited by alice's calls: %v", err)
	}
	clk.Advance(time.Second)
	if err := l.Allow("alice"); err != nil {
		t.Errorf("alice after a second: %v", err)
	}
	st := l.Stats()
	if st.Allowed != 4 || st.Refused != 1 || st.Users != 2 || st.MaxUsers != 10_000 || st.Rate != 1 || st.Burst != 2 {
		t.Errorf("stats = %+v", st)
	}
}

func TestPerUserRateLimitBadUsers(t *testing.T) {
	l, _ := newTestPerUserLimiter(t, PerUserRateLimitConfig{})
	for _, u := range []string{"", strings.Repeat("x", maxUserIDLen+1)} {
		if err := l.Allow(u); !errors.Is(err, ErrInvalidUserID) {
			t.Errorf("Allow(%d bytes) = %v, want ErrInvalidUserID", len(u), err)
		}
	}
	if l.Stats().Users != 0 {
		t.Error("a bad user ID was tracked")
	}
}

// TestPerUserRateLimitEviction fills a one-shard table and checks that only
// users whose bucket is full again are evicted, least recently used first,
// and that their counts stay in Stats.
func TestPerUserRateLimitEviction(t *testing.T) {
	l, clk := newTestPerUserLimiter(t, PerUserRateLimitConfig{
		RateLimit: RateLimitConfig{Rate: 10, Burst: 1}, MaxUsers: 3, Shards: 1, IdleTimeout: time.Hour,
	})
	for _, u := range []string{"a", "b", "c"} {
		if err := l.Allow(u); err != nil {
			t.Fatal(err)
		}
	}
	// Every bucket is refilling: no room, and nobody's limit is reset.
	if err := l.Allow("d"); !errors.Is(err, ErrTooManyUsers) {
		t.Fatalf("new user in a table of refilling users: %v, want ErrTooManyUsers", err)
	}
	if l.Allow("a") == nil {
		t.Fatal("a got a token back")
	}
	clk.Advance(100 * time.Millisecond) // every bucket is full again
	if err := l.Allow("b"); err != nil {
		t.Fatal(err)
	}
	if err := l.Allow("d"); err != nil {
		t.Fatalf("new user with full buckets to evict: %v", err)
	}
	st := l.Stats()
	if st.Users != 3 || st.Evicted != 1 || st.TooManyUsers != 1 || st.Allowed != 5 || st.Refused != 1 {
		t.Errorf("stats = %+v, want 3 users, 1 evicted, 1 too many, 5 allowed, 1 refused", st)
	}
	// b is still refilling: it was not the one evicted.
	if l.Allow("b") == nil {
		t.Error("b's bucket was reset")
	}
}

// TestPerUserRateLimitExpiry checks that users idle for IdleTimeout are
// shed as new users arrive, even when the table has room.
func TestPerUserRateLimitExpiry(t *testing.T) {
	l, clk := newTestPerUserLimiter(t, PerUserRateLimitConfig{
		RateLimit: RateLimitConfig{Rate: 100}, MaxUsers: 1000, Shards: 1, IdleTimeout: time.Minute,
	})
	for i := range 100 {
		_ = l.Allow("old-" + strconv.Itoa(i))
	}
	clk.Advance(2 * time.Minute)
	for i := range 100 {
		_ = l.Allow("new-" + strconv.Itoa(i))
	}
	if st := l.Stats(); st.Users >= 200 || st.Evicted == 0 {
		t.Errorf("after churn: %d users, %d evicted; want idle users shed", st.Users, st.Evicted)
	}
}

func TestPerUserRateLimitAllocatesNothing(t *testing.T) {
	l, clk := newTestPerUserLimiter(t, PerUserRateLimitConfig{RateLimit: RateLimitConfig{Rate: 1000, Burst: 1}})
	_ = l.Allow("alice")
	_ = l.Allow("alice")
	if a := testing.AllocsPerRun(1000, func() { _ = l.Allow("alice"); clk.Advance(time.Millisecond) }); a != 0 {
		t.Errorf("Allow for a tracked user allocates %v times", a)
	}
}

func TestPerUserRateLimitDisabled(t *testing.T) {
	l, _ := newTestPerUserLimiter(t, PerUserRateLimitConfig{RateLimit: RateLimitConfig{Disabled: true, Rate: 1, Burst: 1}})
	for range 10 {
		if err := l.Allow("alice"); err != nil {
			t.Fatal(err)
		}
	}
	if st := l.Stats(); st.Users != 0 || st.Rate != 0 {
		t.Errorf("disabled: %+v", st)
	}
}

func TestPerUserRateLimitReconfigure(t *testing.T) {
	l, _ := newTestPerUserLimiter(t, PerUserRateLimitConfig{RateLimit: RateLimitConfig{Rate: 10, Burst: 10}})
	for range 6 {
		_ = l.Allow("alice")
	}
	c := newChecker("core.PerUserRateLimitConfig.")
	l.reconfigure(PerUserRateLimitConfig{RateLimit: RateLimitConfig{Rate: 1, Burst: 2}, Clock: l.clock}.normalize(c))
	n := 0
	for l.Allow("alice") == nil {
		n++
	}
	if n != 2 {
		t.Errorf("alice after lowering the limit got %d calls, want 2", n)
	}
	if st := l.Stats(); st.Allowed != 8 || st.Rate != 1 {
		t.Errorf("stats after reconfiguration: %+v", st)
	}
}

// TestPerUserRateLimitConcurrent runs many users from many goroutines in a
// small table, under -race, and checks that no user gets more than their
// burst while the clock stands still, evictions and all.
func TestPerUserRateLimitConcurrent(t *testing.T) {
	l, _ := newTestPerUserLimiter(t, PerUserRateLimitConfig{
		RateLimit: RateLimitConfig{Rate: 1, Burst: 3}, MaxUsers: 64, Shards: 4,
	})
	var mu sync.Mutex
	perUser := map[string]int{}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			got := map[string]int{}
			for i := range 2000 {
				u := "u" + strconv.Itoa((i*7+g)%100)
				switch err := l.Allow(u); {
				case err == nil:
					got[u]++
				case errors.Is(err, ErrRateLimited), errors.Is(err, ErrTooManyUsers):
				default:
					t.Errorf("Allow(%s): %v", u, err)
				}
			}
			mu.Lock()
			for u, n := range got {
				perUser[u] += n
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	for u, n := range perUser {
		if n > 3 {
			t.Errorf("%s got %d calls with a burst of 3 and a clock standing still", u, n)
		}
	}
	st := l.Stats()
	if st.Users > 64 {
		t.Errorf("%d users tracked, bound 64", st.Users)
	}
	total := 0
	for _, n := range perUser {
		total += n
	}
	if st.Allowed != uint64(total) {
		t.Errorf("Stats.Allowed = %d, calls allowed = %d", st.Allowed, total)
	}
}

// TestPerUserRateLimitReconfigureConcurrent reconfigures and reads Stats
// while users call, under -race.
func TestPerUserRateLimitReconfigureConcurrent(t *testing.T) {
	l, clk := newTestPerUserLimiter(t, PerUserRateLimitConfig{RateLimit: RateLimitConfig{Rate: 100}, MaxUsers: 50})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
					_ = l.Allow("u" + strconv.Itoa((i+g)%80))
				}
			}
		})
	}
	c := newChecker("core.PerUserRateLimitConfig.")
	for i := range 100 {
		cfg := PerUserRateLimitConfig{RateLimit: RateLimitConfig{Rate: float64(10 + i), Disabled: i%10 == 5}, MaxUsers: 20 + i, Clock: clk}
		l.reconfigure(cfg.normalize(c))
		_ = l.Stats()
		clk.Advance(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if st := l.Stats(); st.MaxUsers != 119 || st.Rate != 109 {
		t.Errorf("after reconfiguration: %+v", st)
	}
}

// BenchmarkPerUserRateLimitAllow takes a token for one of 1000 users.
func BenchmarkPerUserRateLimitAllow(b *testing.B) {
	l, err := NewPerUserRateLimiter(PerUserRateLimitConfig{RateLimit: RateLimitConfig{Rate: 1e9, Burst: 1e9}})
	if err != nil {
		b.Fatal(err)
	}
	users := make([]string, 1000)
	for i := range users {
		users[i] = "user-" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if err := l.Allow(users[i%len(users)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// TestPerUserRateLimitLowerMaxUsers lowers MaxUsers on a full table and
// checks that new users shrink it to the new bound.
func TestPerUserRateLimitLowerMaxUsers(t *testing.T) {
	l, clk := newTestPerUserLimiter(t, PerUserRateLimitConfig{RateLimit: RateLimitConfig{Rate: 10}, MaxUsers: 100, Shards: 1})
	for i := range 100 {
		_ = l.Allow("a" + strconv.Itoa(i))
	}
	cfg := l.cfg
	cfg.MaxUsers = 10
	l.reconfigure(cfg)
	for i := range 100 {
		clk.Advance(time.Second) // every bucket is full again
		_ = l.Allow("b" + strconv.Itoa(i))
	}
	if st := l.Stats(); st.Users > 10 || st.MaxUsers != 10 {
		t.Errorf("%d users tracked after lowering MaxUsers to %d", st.Users, st.MaxUsers)
	}
}
