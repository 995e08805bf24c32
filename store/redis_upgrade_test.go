package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/internal/redistest"
	"github.com/bulwark-go/bulwark/internal/wait"
)

// oldPushScript writes an instance's window counts as the version 1
// store's sync did: one field of the endpoint's {tag}:window hash per
// instance, "total failed slow at_ms version" with at_ms Redis's time and
// version the state version the instance knew, and the hash's TTL twice
// the rolling window. ARGV: 1 instance, 2 total, 3 failed, 4 slow,
// 5 version, 6 how long ago it wrote them (ms), 7 rolling window ms.
// Returns the field's value.
var oldPushScript = redis.NewScript(`
local tm = redis.call('TIME')
local at = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000) - tonumber(ARGV[6])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. ARGV[4] .. ' ' .. string.format('%d', at) .. ' ' .. ARGV[5])
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[7]))
return redis.call('HGET', KEYS[1], ARGV[1])
`)

// During a rolling upgrade, instances still on the version 1 window format
// write their counts next to the new stores' aggregates. The new stores'
// window counts both, each call once, follows the old writers' updates
// without adding them up, leaves out what the old format itself would
// not count (entries older than the window, or from before the window
// last started again), and never touches the old writers' entries.
func TestRedisRollingUpgradeCountsBothFormats(t *testing.T) {
	srv := redistest.Start(t)
	const window = 5 * time.Second
	cfg := core.BreakerConfig{FailureThreshold: 1000, MinRequestsForRate: 1_000_000, SlowCallDuration: time.Second, RollingWindow: window}
	a, b, ba, bb := pairOnAPI(t, srv, cfg)
	ctx := context.Background()

	// The window starts again at version 2 (the epoch), which the old
	// writers know too.
	if err := a.s.ForceOpen(ctx, "api", "upgrade test"); err != nil {
		t.Fatal(err)
	}
	if err := a.s.Reset(ctx, "api"); err != nil {
		t.Fatal(err)
	}
	wait.For(t, testWait, "b to follow the reset", func() bool { return bb.Snapshot().Reason == "reset" })
	syncRounds(t, 2, "after the reset", a.s, b.s)

	raw := newTestClient(t, srv)
	oldKey := newRedisKeys("bulwark", "api").window
	old := map[string]string{} // what the old writers wrote, field by field
	oldPush := func(id string, total, failed, slow, version int, ago time.Duration) {
		t.Helper()
		v, err := oldPushScript.Run(ctx, raw, []string{oldKey}, id, total, failed, slow, version, ago.Milliseconds(), window.Milliseconds()).Text()
		if err != nil {
			t.Fatal(err)
		}
		old[id] = v
	}
	oldPush("old-1", 30, 12, 0, 2, 0)
	oldPush("old-2", 8, 0, 3, 2, 0)
	// What the version 1 format itself leaves out: an instance silent for
	// longer than the window, and counts from before the reset.
	oldPush("old-gone", 100, 100, 0, 2, 2*window)
	oldPush("old-before", 100, 100, 0, 1, 0)

	// The new stores' own calls.
	call := func(br *core.Breaker, n int, o core.Outcome, d time.Duration) {
		for range n {
			p, err := br.Allow()
			if err != nil {
				t.Fatal(err)
			}
			p.Report(o, d)
		}
	}
	call(ba, 8, core.Success, 0)
	call(ba, 2, core.Failure, 0)
	call(ba, 1, core.Success, 2*time.Second)
	call(bb, 6, core.Success, 0)
	call(bb, 1, core.Failure, 0)

	// windows reports whether a's and b's windows hold want, and fails the
	// test if either holds more than most of anything (or, with strict,
	// anything but want).
	windows := func(want, most counts3, strict bool) bool {
		t.Helper()
		done := true
		for _, in := range []*instance{a, b} {
			s := in.breaker(t, "api").Snapshot()
			got := counts3{s.WindowRequests, s.WindowFailures, s.WindowSlow}
			if got.total > most.total || got.failed > most.failed || got.slow > most.slow || strict && got != want {
				t.Fatalf("%s's window holds %+v (calls, failed, slow), want %+v", in.s.InstanceID(), got, want)
			}
			done = done && got == want
		}
		return done
	}
	// stays checks that the windows keep want, round after round and
	// bucket after bucket (the old writers' share is read again for each).
	stays := func(want counts3) {
		t.Helper()
		for start := time.Now(); time.Since(start) < 2*window/10; {
			syncRounds(t, 1, "with nothing new", a.s, b.s)
			windows(want, want, true)
		}
	}
	want := counts3{11 + 7 + 30 + 8, 2 + 1 + 12, 1 + 3}
	wait.For(t, testWait, "both windows to count both formats", func() bool { return windows(want, want, false) })
	stays(want)

	// An old writer's update replaces its share.
	oldPush("old-1", 40, 16, 0, 2, 0)
	next := counts3{want.total + 10, want.failed + 4, want.slow}
	wait.For(t, testWait, "both windows to follow the old writer", func() bool { return windows(next, next, false) })
	stays(next)

	// The old writers' entries are as they wrote them, and the new stores
	// wrote none of their own there.
	got := raw.HGetAll(ctx, oldKey).Val()
	if fmt.Sprint(got) != fmt.Sprint(old) {
		t.Errorf("the version 1 window holds\n%v\nwant what the old writers wrote:\n%v", got, old)
	}
	if ttl := raw.PTTL(ctx, oldKey).Val(); ttl <= 0 || ttl > 2*window {
		t.Errorf("the version 1 window's TTL is %v, want the old writers' (at most %v)", ttl, 2*window)
	}
}
