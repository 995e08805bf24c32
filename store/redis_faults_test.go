package store

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
	"github.com/bulwark-go/bulwark/internal/redistest"
	"github.com/bulwark-go/bulwark/internal/wait"
)

// faultSync is the sync interval of the fault tests: their bounds are two
// of it, which a loaded 2-core machine keeps.
const faultSync = 250 * time.Millisecond

// newFaultInstance is an instance whose Manager runs fault injection.
func newFaultInstance(t *testing.T, srv *redistest.Server, name string, rc RedisConfig) *instance {
	t.Helper()
	return newFaultInstanceOf(t, srv, name, &core.FaultLimits{}, rc)
}

// newFaultInstanceOf is newFaultInstance with limits. As the kit does, it
// ends the experiments still running here after the store has closed.
func newFaultInstanceOf(t *testing.T, srv *redistest.Server, name string, limits *core.FaultLimits, rc RedisConfig) *instance {
	t.Helper()
	if rc.SyncInterval == 0 {
		rc.SyncInterval = faultSync
	}
	if rc.MaxReconnectBackoff == 0 {
		rc.MaxReconnectBackoff = max(rc.SyncInterval, 200*time.Millisecond)
	}
	in := newInstanceOf(t, newTestClient(t, srv), name, core.ManagerConfig{Faults: limits}, rc, nil)
	t.Cleanup(func() {
		in.close()
		for _, f := range in.m.Faults() {
			in.m.StopFault(f.ID)
		}
	})
	// Its first round: the subscription is up and the list read.
	wait.For(t, testWait, name+"'s first round", func() bool { return in.s.ticks.Load() > 0 })
	return in
}

// fault returns the experiment id as in runs it.
func (in *instance) fault(id string) (core.Fault, bool) { return runningFault(in.m, id) }

// faultEnds counts the end events of experiment id on in's bus, by reason.
func (in *instance) faultEnds(id, reason string) int {
	return in.rec.count(func(e events.Event) bool {
		f, ok := e.(events.FaultChange)
		return ok && f.Type == events.TypeFaultEnd && f.ID == id && f.Reason == reason
	})
}

// channelLog keeps the messages published on a channel.
type channelLog struct {
	mu   sync.Mutex
	msgs []string
}

func listen(t *testing.T, c *redis.Client, channel string) *channelLog {
	t.Helper()
	ps := c.Subscribe(context.Background(), channel)
	if _, err := ps.Receive(context.Background()); err != nil { // the subscription's confirmation
		t.Fatal(err)
	}
	l := &channelLog{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range ps.Channel() {
			l.mu.Lock()
			l.msgs = append(l.msgs, m.Payload)
			l.mu.Unlock()
		}
	}()
	t.Cleanup(func() { _ = ps.Close(); <-done })
	return l
}

func (l *channelLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.msgs...)
}

// An experiment started on a runs on b, with a as its Origin and every
// field (filters included), at once by pub/sub; c, started later, picks it
// up; stopped on b, it ends on a and c, and leaves Redis; each start and
// stop is published once, and nothing echoes back.
func TestRedisFaultExperimentAcrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	raw := newTestClient(t, srv)
	ch := listen(t, raw, "bulwark:faults")
	a := newFaultInstance(t, srv, "a", RedisConfig{})
	b := newFaultInstance(t, srv, "b", RedisConfig{})

	want := core.Fault{Endpoint: "GET /users/{id}", Percent: 40, Status: 503, Latency: 5 * time.Millisecond,
		LatencyMax: 20 * time.Millisecond, Header: "X-Chaos", HeaderValue: "on", User: "user-7",
		Duration: time.Minute, Reason: "game day"}
	f, err := a.m.StartFault(want)
	if err != nil {
		t.Fatal(err)
	}
	took := wait.For(t, 2*faultSync, "b to run a's experiment", func() bool { _, ok := b.fault(f.ID); return ok })
	t.Logf("b ran a's experiment %v after the start (sync interval %v)", took.Round(time.Microsecond), faultSync)

	got, _ := b.fault(f.ID)
	if d := got.Ends.Sub(f.Ends).Abs(); d > 30*time.Millisecond {
		t.Errorf("b's copy ends %v from a's", d)
	}
	if got.Origin != "a" {
		t.Errorf("b's copy has Origin %q, want a", got.Origin)
	}
	got.Ends, got.Origin, want.ID, want.Ends = time.Time{}, "", f.ID, time.Time{}
	if got != want {
		t.Errorf("b runs\n %+v\nwant\n %+v", got, want)
	}
	if mine, _ := a.fault(f.ID); mine.Origin != "" {
		t.Errorf("a's own experiment has Origin %q", mine.Origin)
	}
	ctx := context.Background()
	key := newClusterKeys("bulwark").faultPrefix + f.ID
	if ttl := raw.PTTL(ctx, key).Val(); ttl <= 0 || ttl > time.Minute {
		t.Errorf("the experiment's key expires in %v, want within its minute", ttl)
	}

	c := newFaultInstance(t, srv, "c", RedisConfig{})
	took = wait.For(t, 2*faultSync, "c, started later, to run it", func() bool { _, ok := c.fault(f.ID); return ok })
	t.Logf("c, started later, ran it %v after its first round", took.Round(time.Microsecond))
	if got, _ := c.fault(f.ID); got.Origin != "a" || got.User != "user-7" {
		t.Errorf("c runs %+v", got)
	}

	stopped := time.Now()
	if _, ok := b.m.StopFault(f.ID); !ok {
		t.Fatal("b does not run it")
	}
	for _, in := range []*instance{a, c} {
		wait.For(t, 2*faultSync, in.s.InstanceID()+" to end it", func() bool { _, ok := in.fault(f.ID); return !ok })
	}
	t.Logf("stopped on b: ended on a and c %v later", time.Since(stopped).Round(time.Microsecond))
	if n := raw.Exists(ctx, key).Val(); n != 0 {
		t.Error("the stopped experiment's key is still in Redis")
	}
	if n := raw.ZCard(ctx, newClusterKeys("bulwark").faults).Val(); n != 0 {
		t.Errorf("the index holds %d experiments after the stop", n)
	}

	// A few rounds more: nothing comes back.
	for _, in := range []*instance{a, b, c} {
		n := in.s.ticks.Load()
		wait.For(t, testWait, "three rounds of "+in.s.InstanceID(), func() bool { return in.s.ticks.Load() >= n+3 })
	}
	for _, in := range []*instance{a, b, c} {
		if n, all := in.faultEnds(f.ID, "stopped"), in.faultEnds(f.ID, ""); n != 1 || all != 0 {
			t.Errorf("%s: %d stopped ends of the experiment:\n%s", in.s.InstanceID(), n, in.rec.dump())
		}
		if _, ok := in.fault(f.ID); ok {
			t.Errorf("%s runs the stopped experiment again", in.s.InstanceID())
		}
	}
	msgs := ch.all()
	if len(msgs) != 2 || !strings.Contains(msgs[0], `"op":"start","instance":"a"`) || !strings.Contains(msgs[1], `"op":"stop","instance":"b"`) {
		t.Errorf("published on the channel:\n%s", strings.Join(msgs, "\n"))
	}
}

// An experiment ends everywhere at its end, by itself, as its key expires.
func TestRedisFaultExperimentExpiresEverywhere(t *testing.T) {
	srv := redistest.Start(t)
	raw := newTestClient(t, srv)
	a := newFaultInstance(t, srv, "a", RedisConfig{})
	b := newFaultInstance(t, srv, "b", RedisConfig{})
	c := newFaultInstance(t, srv, "c", RedisConfig{})
	f, err := a.m.StartFault(core.Fault{Endpoint: "db", Percent: 100, Abort: true, Duration: 2 * faultSync})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []*instance{b, c} {
		wait.For(t, 2*faultSync, in.s.InstanceID()+" to run it", func() bool { _, ok := in.fault(f.ID); return ok })
	}
	for _, in := range []*instance{a, b, c} {
		wait.For(t, time.Until(f.Ends)+2*faultSync, in.s.InstanceID()+" to end it, as expired", func() bool {
			_, ok := in.fault(f.ID)
			return !ok && in.faultEnds(f.ID, "expired") == 1
		})
	}
	for _, in := range []*instance{a, b, c} {
		if n := in.faultEnds(f.ID, "stopped"); n != 0 {
			t.Errorf("%s: %d stopped ends:\n%s", in.s.InstanceID(), n, in.rec.dump())
		}
	}
	t.Logf("ended everywhere %v after its end", time.Since(f.Ends).Round(time.Millisecond))
	if raw.Exists(context.Background(), newClusterKeys("bulwark").faultPrefix+f.ID).Val() != 0 {
		t.Error("the key outlived the experiment")
	}
}

// An instance that closes leaves the cluster's experiments running: the
// stops its kit makes after Close (it ends what runs here as it shuts
// down) are not shared. An instance that joins later still gets them.
func TestRedisFaultExperimentOutlivesAClosingInstance(t *testing.T) {
	srv := redistest.Start(t)
	raw := newTestClient(t, srv)
	a := newFaultInstance(t, srv, "a", RedisConfig{})
	b := newFaultInstance(t, srv, "b", RedisConfig{})
	f, err := a.m.StartFault(core.Fault{Endpoint: "api", Percent: 10, Status: 500, Duration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	wait.For(t, 2*faultSync, "b to run it", func() bool { _, ok := b.fault(f.ID); return ok })

	b.close()
	if _, ok := b.m.StopFault(f.ID); !ok {
		t.Fatal("b's copy was not running")
	}
	a.close() // its origin, too
	if _, ok := a.m.StopFault(f.ID); !ok {
		t.Fatal("a's experiment was not running")
	}
	if raw.Exists(context.Background(), newClusterKeys("bulwark").faultPrefix+f.ID).Val() != 1 {
		t.Fatal("the experiment left Redis with the instances that closed")
	}
	d := newFaultInstance(t, srv, "d", RedisConfig{})
	wait.For(t, 2*faultSync, "d, started after both closed, to run it", func() bool { _, ok := d.fault(f.ID); return ok })
}

// While Redis is unreachable each instance keeps running what it runs; on
// reconnection a stop made meanwhile ends the experiment elsewhere, and
// one started meanwhile reaches the others.
func TestRedisFaultExperimentsReconcileAfterAnOutage(t *testing.T) {
	srv := redistest.Start(t)
	rc := RedisConfig{SyncInterval: testSync, OpTimeout: 100 * time.Millisecond}
	a := newFaultInstance(t, srv, "a", rc)
	b := newFaultInstance(t, srv, "b", rc)
	x, err := a.m.StartFault(core.Fault{Endpoint: "api", Percent: 50, Status: 500, Duration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	wait.For(t, testWait, "b to run x", func() bool { _, ok := b.fault(x.ID); return ok })

	srv.Pause()
	wait.For(t, testWait, "both to see Redis gone", func() bool { return !a.s.healthy.Load() && !b.s.healthy.Load() })
	if _, ok := b.m.StopFault(x.ID); !ok {
		t.Fatal("b's copy of x was not running")
	}
	y, err := a.m.StartFault(core.Fault{Endpoint: "api", Percent: 5, Latency: time.Millisecond, Duration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := a.fault(x.ID); !ok {
		t.Fatal("a ended x while Redis was away")
	}
	srv.Resume()
	wait.For(t, testWait, "a to end x, stopped on b meanwhile", func() bool { _, ok := a.fault(x.ID); return !ok })
	wait.For(t, testWait, "b to run y, started on a meanwhile", func() bool { g, ok := b.fault(y.ID); return ok && g.Origin == "a" })
	if n := a.faultEnds(x.ID, "stopped"); n != 1 {
		t.Errorf("a: %d stopped ends of x", n)
	}
}

// Garbage in the experiments' keys is ignored and reported once each,
// however many rounds read it; a valid experiment beside it runs.
func TestRedisFaultGarbageIsIgnoredAndReportedOnce(t *testing.T) {
	srv := redistest.Start(t)
	raw := newTestClient(t, srv)
	ctx := context.Background()
	k := newClusterKeys("bulwark")
	ends := time.Now().Add(time.Minute).UnixMilli()
	valid := string(encodeJSON(wireFault{ID: "ok-1", Endpoint: "api", Percent: 20, Status: 502, Duration: int64(time.Minute), Ends: ends, Origin: "x"}))
	entries := map[string]string{
		"ok-1":        valid,
		"junk":        "{not json",
		"bad-percent": strings.Replace(strings.Replace(valid, `"ok-1"`, `"bad-percent"`, 1), `"percent":20`, `"percent":500`, 1),
		"mismatch":    strings.Replace(valid, `"ok-1"`, `"other"`, 1),
		"bad-origin":  strings.Replace(strings.Replace(valid, `"ok-1"`, `"bad-origin"`, 1), `"origin":"x"`, `"origin":"a b"`, 1),
	}
	for id, v := range entries {
		raw.Set(ctx, k.faultPrefix+id, v, time.Minute)
		raw.ZAdd(ctx, k.faults, redis.Z{Score: float64(ends), Member: id})
	}
	raw.HSet(ctx, k.faultPrefix+"a-hash", "x", "y")
	raw.ZAdd(ctx, k.faults, redis.Z{Score: float64(ends), Member: "a-hash"}, redis.Z{Score: float64(ends), Member: "gone"})

	logs := &logRecorder{}
	a := newFaultInstance(t, srv, "a", RedisConfig{SyncInterval: testSync, Logger: slog.New(logs)})
	wait.For(t, testWait, "a to run the valid experiment", func() bool { _, ok := a.fault("ok-1"); return ok })
	// Two backstop reads of the whole list later (every 16 rounds).
	n := a.s.ticks.Load()
	wait.For(t, testWait, "40 rounds", func() bool { return a.s.ticks.Load() >= n+40 })

	for _, id := range []string{"junk", "bad-percent", "mismatch", "bad-origin", "a-hash"} {
		if c := logs.count(slog.LevelWarn, `"`+id+`"`) + logs.count(slog.LevelWarn, " "+id+" "); c != 1 {
			t.Errorf("%s reported %d times, want once:\n%s", id, c, logs.dump())
		}
		if _, ok := a.fault(id); ok {
			t.Errorf("%s runs", id)
		}
	}
	if raw.ZScore(ctx, k.faults, "gone").Err() == nil {
		t.Error("the index still names an experiment whose key is gone")
	}

	// An index of the wrong type: reported once, and replaced by the next
	// start, which reaches the others.
	raw.Del(ctx, k.faults)
	raw.Set(ctx, k.faults, "not a sorted set", 0)
	raw.Incr(ctx, k.version)
	wait.For(t, testWait, "the bad index reported", func() bool { return logs.count(slog.LevelWarn, "faults ignored") == 1 })
	b := newFaultInstance(t, srv, "b", RedisConfig{SyncInterval: testSync})
	f, err := b.m.StartFault(core.Fault{Endpoint: "api", Percent: 1, Abort: true})
	if err != nil {
		t.Fatal(err)
	}
	wait.For(t, testWait, "a to run b's experiment", func() bool { _, ok := a.fault(f.ID); return ok })
	n = a.s.ticks.Load()
	wait.For(t, testWait, "20 rounds", func() bool { return a.s.ticks.Load() >= n+20 })
	if c := logs.count(slog.LevelWarn, "faults ignored"); c != 1 {
		t.Errorf("the bad index reported %d times:\n%s", c, logs.dump())
	}

	// A malformed message: reported, no panic, nothing runs.
	before := len(a.m.Faults())
	raw.Publish(ctx, "bulwark:faults", `{"op":"start","instance":"z","fault":{"id":"evil","endpoint":"","percent":1e400}}`)
	raw.Publish(ctx, "bulwark:faults", `{"op":"stop","instance":"z","id":"`+f.ID+`","extra":1}`)
	wait.For(t, testWait, "the bad messages reported", func() bool { return logs.count(slog.LevelWarn, "fault message") >= 1 })
	if len(a.m.Faults()) != before {
		t.Errorf("a malformed message changed the experiments: %+v", a.m.Faults())
	}
}

// An experiment that this instance's limits refuse (longer than its
// MaxDuration) does not run here, said once; with the index full by this
// instance's MaxFaults, one started here runs here only, said once too.
func TestRedisFaultExperimentsBeyondTheLimits(t *testing.T) {
	srv := redistest.Start(t)
	logs := &logRecorder{}
	a := newFaultInstanceOf(t, srv, "a", &core.FaultLimits{MaxFaults: 1, MaxDuration: 10 * time.Second},
		RedisConfig{SyncInterval: testSync, Logger: slog.New(logs)})
	b := newFaultInstance(t, srv, "b", RedisConfig{SyncInterval: testSync})
	long, err := b.m.StartFault(core.Fault{Endpoint: "api", Percent: 1, Abort: true, Duration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	wait.For(t, testWait, "a's refusal of b's experiment reported", func() bool { return logs.count(slog.LevelWarn, "not run here") == 1 })
	own, err := a.m.StartFault(core.Fault{Endpoint: "api", Percent: 2, Latency: time.Millisecond, Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	wait.For(t, testWait, "a's experiment refused by Redis, reported", func() bool { return logs.count(slog.LevelWarn, "runs on this instance only") == 1 })
	n := a.s.ticks.Load()
	wait.For(t, testWait, "40 rounds", func() bool { return a.s.ticks.Load() >= n+40 })
	if _, ok := runningFault(b.m, own.ID); ok {
		t.Error("b runs the experiment Redis refused")
	}
	if _, ok := runningFault(a.m, long.ID); ok {
		t.Error("a runs an experiment longer than its MaxDuration")
	}
	if c1, c2 := logs.count(slog.LevelWarn, "not run here"), logs.count(slog.LevelWarn, "runs on this instance only"); c1 != 1 || c2 != 1 {
		t.Errorf("reported %d and %d times, want once each:\n%s", c1, c2, logs.dump())
	}
}

func TestDecodeFaultMessage(t *testing.T) {
	now := time.Unix(1_760_000_000, 0)
	ends := now.Add(time.Minute).UnixMilli()
	w := wireFault{ID: "f1", Endpoint: "GET /x", Percent: 50, Status: 500, Duration: int64(time.Minute), Ends: ends, Origin: "web-1", User: "ü"}
	start := encodeJSON(wireFaultMessage{Op: "start", Instance: "web-1", Fault: &w})
	m, err := decodeFaultMessage(start, now)
	if err != nil || m.stop || m.id != "f1" || m.instance != "web-1" || m.entry.ends != ends || m.entry.f.User != "ü" || m.entry.f.Origin != "web-1" {
		t.Fatalf("start: %+v %v", m, err)
	}
	for _, bad := range []string{
		``, `null`, `[]`, `{"op":"start","instance":"web-1"}`,
		`{"op":"stop","instance":"web-1"}`,
		`{"op":"stop","instance":"web 1","id":"f1"}`,
		`{"op":"pause","instance":"web-1","id":"f1"}`,
		`{"op":"stop","instance":"web-1","id":"f1"} {}`,
		`{"op":"stop","instance":"web-1","id":"` + strings.Repeat("x", 65) + `"}`,
		strings.Replace(string(start), `"ends":`, `"ends":9`, 1),
		strings.Replace(string(start), `"endpoint":"GET /x"`, `"endpoint":""`, 1),
		strings.Replace(string(start), `"duration_ns":`, `"duration_ns":-`, 1),
		strings.Replace(string(start), `"percent":50`, `"percent":50,"more":1`, 1),
		`{"op":"stop","instance":"web-1","id":"` + strings.Repeat("x", maxFaultLen) + `"}`,
	} {
		if _, err := decodeFaultMessage([]byte(bad), now); !errors.Is(err, errMalformed) {
			t.Errorf("%.120s: %v, want errMalformed", bad, err)
		}
	}
}

// The list of instances: healthy means seen within 3 sync intervals (by
// Redis's clock), times on this instance's clock, sorted by ID, and this
// instance's shares of the shared rate limits on its own entry.
func TestPublishMembers(t *testing.T) {
	bus := events.NewBus()
	sub := bus.Subscribe(4)
	defer sub.Close()
	now := time.Unix(1_760_000_000, 0)
	s := &RedisStore{cfg: RedisConfig{InstanceID: "web-2", SyncInterval: time.Second}, clock: core.NewFakeClock(now)}
	s.bus.Store(bus)
	s.offset.Store(int64(2 * time.Second)) // Redis is 2s ahead
	redisNow := now.Add(2 * time.Second)
	r := roundReply{redisTime: redisNow, membersRead: true, members: []memberSeen{
		{"web-3", redisNow.Add(-3*time.Second - time.Millisecond).UnixMilli()},
		{"web-2", redisNow.UnixMilli()},
		{"web-1", redisNow.Add(-3 * time.Second).UnixMilli()},
	}}
	s.publishMembers(r)
	st := (<-sub.C()).(events.StoreStatus)
	if st.Status != "members" || st.Store != "redis" || st.Instance != "web-2" || len(st.Instances) != 3 {
		t.Fatalf("%+v", st)
	}
	in := st.Instances
	if in[0].ID != "web-1" || !in[0].Healthy || in[0].Self || in[0].Shares != nil ||
		in[1].ID != "web-2" || !in[1].Healthy || !in[1].Self ||
		in[2].ID != "web-3" || in[2].Healthy {
		t.Errorf("%+v", in)
	}
	if !in[1].LastSeen.Equal(now) {
		t.Errorf("this instance last seen %v, want %v on its own clock", in[1].LastSeen, now)
	}

	// This instance's share of a shared limit shows on its own entry; the
	// others' are theirs to tell.
	l, err := core.NewRateLimiter(core.RateLimitConfig{Rate: 100, Shared: true})
	if err != nil {
		t.Fatal(err)
	}
	s.eps = map[string]*redisEndpoint{
		"GET /a": {name: "GET /a", quota: quotaState{quotaShare: quotaShare{l: l, share: 0.25}}},
		"GET /b": {name: "GET /b"},
	}
	s.publishMembers(r)
	if st := (<-sub.C()).(events.StoreStatus); len(st.Instances[1].Shares) != 1 || st.Instances[1].Shares["GET /a"] != 0.25 ||
		st.Instances[0].Shares != nil || st.Instances[2].Shares != nil {
		t.Errorf("shares %+v", st.Instances)
	}
}

// latestMembers is the last list of instances published on in's bus.
func (in *instance) latestMembers() []events.Instance {
	in.rec.mu.Lock()
	defer in.rec.mu.Unlock()
	for i := len(in.rec.evs) - 1; i >= 0; i-- {
		if st, ok := in.rec.evs[i].(events.StoreStatus); ok && st.Status == "members" {
			return st.Instances
		}
	}
	return nil
}

// membersSay reports whether list is exactly the instances of want, each
// with its health, and Self on self alone.
func membersSay(list []events.Instance, self string, want map[string]bool) bool {
	if len(list) != len(want) {
		return false
	}
	for _, i := range list {
		healthy, ok := want[i.ID]
		if !ok || i.Healthy != healthy || i.Self != (i.ID == self) || i.LastSeen.IsZero() {
			return false
		}
	}
	return true
}

// Three instances each list all three, healthy; one that closes leaves
// the list; one that is cut off (its heartbeat stops, Close never runs)
// turns unhealthy, then leaves it.
func TestRedisMembers(t *testing.T) {
	srv := redistest.Start(t)
	rc := RedisConfig{membersEvery: 5 * testSync}
	a := newInstance(t, srv, "a", core.BreakerConfig{}, rc)
	b := newInstance(t, srv, "b", core.BreakerConfig{}, rc)
	c := newInstance(t, srv, "c", core.BreakerConfig{}, rc)
	all := map[string]bool{"a": true, "b": true, "c": true}
	for _, in := range []*instance{a, b, c} {
		wait.For(t, testWait, in.s.InstanceID()+" to list all three", func() bool {
			return membersSay(in.latestMembers(), in.s.InstanceID(), all)
		})
	}

	c.close()
	wait.For(t, testWait, "a to list a and b after c closed", func() bool {
		return membersSay(a.latestMembers(), "a", map[string]bool{"a": true, "b": true})
	})

	if err := b.c.Close(); err != nil { // b's heartbeat stops; its store never says goodbye
		t.Fatal(err)
	}
	wait.For(t, testWait, "a to list b unhealthy", func() bool {
		return membersSay(a.latestMembers(), "a", map[string]bool{"a": true, "b": false})
	})
	wait.For(t, testWait, "a to drop b", func() bool { return membersSay(a.latestMembers(), "a", map[string]bool{"a": true}) })
}

// The list is published every few seconds, not every sync round, and the
// period is a multiple of the sync interval.
func TestMembersPeriod(t *testing.T) {
	for _, tc := range []struct{ sync, want time.Duration }{
		{time.Second, 5 * time.Second},
		{40 * time.Millisecond, 5 * time.Second},
		{3 * time.Second, 6 * time.Second},
		{time.Minute, time.Minute},
		{10 * time.Millisecond, 5 * time.Second},
		{1500 * time.Millisecond, 6 * time.Second},
	} {
		s := &RedisStore{cfg: RedisConfig{SyncInterval: tc.sync}}
		if got := s.membersPeriod(); got != tc.want {
			t.Errorf("sync %v: period %v, want %v", tc.sync, got, tc.want)
		}
		if ttl := s.memberTTL(); ttl <= s.membersPeriod()+3*tc.sync {
			t.Errorf("sync %v: entries removed after %v, before an unhealthy one is listed", tc.sync, ttl)
		}
	}
}
