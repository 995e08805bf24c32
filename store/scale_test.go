package store

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/internal/redistest"
)

// TestScale measures what shared state costs Redis: N simulated instances
// (a Manager and a RedisStore each, in this process) share E endpoints on
// one private redis-server, every instance calling every endpoint once per
// 100ms and syncing once per second. For each N it prints Redis's CPU per
// endpoint-sync (INFO cpu, user and system, over the measured seconds,
// less what the same server spent before the instances started, divided
// by the endpoint-syncs the stores made), commands per second
// (INFO stats; commands run by scripts count too), script calls per second
// and bytes per second in and out; then a run in which half the endpoints
// go idle, measured again once their windows have drained. It fails unless
// the CPU per endpoint-sync at the largest N is within 1.25 times the
// smallest N's and, on a single Redis, at most 10µs at every N, and half
// the endpoints idle make a quarter fewer commands.
//
//	BULWARK_SCALE=1 go test -run TestScale -v -timeout 30m ./store/
//
// BULWARK_SCALE_N (default "10,100,300"), BULWARK_SCALE_E (50) and
// BULWARK_SCALE_SECONDS (10, at least 8) change the runs;
// BULWARK_SCALE_CLUSTER=1 runs them on a Redis Cluster of three masters
// (their figures summed), where the sync rounds go in batches of one slot
// and every endpoint, idle or not, reads its versions every round (no
// script can reach a counter of changes there);
// BULWARK_SCALE_COMMANDS=1 also prints Redis's time per command. The instances of
// a group of 10 share one redis.Client (the client is not what is
// measured), so that 300 instances fit on a small machine.
func TestScale(t *testing.T) {
	if os.Getenv("BULWARK_SCALE") == "" {
		t.Skip("a long measurement: set BULWARK_SCALE=1 to run it")
	}
	ns := []int{10, 100, 300}
	if v := os.Getenv("BULWARK_SCALE_N"); v != "" {
		ns = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				t.Fatalf("BULWARK_SCALE_N=%q", v)
			}
			ns = append(ns, n)
		}
	}
	e := envInt(t, "BULWARK_SCALE_E", 50)
	secs := max(envInt(t, "BULWARK_SCALE_SECONDS", 10), 8)
	measure := time.Duration(secs) * time.Second
	cluster := os.Getenv("BULWARK_SCALE_CLUSTER") != ""
	label := "N=%d E=%d"
	if cluster {
		label = "cluster " + label
	}

	var rows []scaleRow
	for _, n := range ns {
		f := startScaleFleet(t, n, e, cluster)
		f.warmUp(t)
		r := f.measure(t, measure)
		r.label = fmt.Sprintf(label, n, e)
		rows = append(rows, r)
		f.close(t)
		t.Logf("%s", r)
	}

	// Half the endpoints go idle: once their windows have drained they
	// send nothing but their (batched) version checks.
	idleN := ns[len(ns)/2]
	f := startScaleFleet(t, idleN, e, cluster)
	f.warmUp(t)
	before := f.measure(t, measure)
	before.label = fmt.Sprintf(label+" all active", idleN, e)
	f.active.Store(int64(e / 2))
	time.Sleep(10*time.Second + 3*time.Second) // the rolling window, and a sync or two
	after := f.measure(t, measure)
	after.label = fmt.Sprintf(label+" half idle", idleN, e)
	f.close(t)

	var b strings.Builder
	fmt.Fprintf(&b, "\n%-32s %12s %10s %10s %10s %12s %12s %8s %8s %8s\n",
		"run", "ep-syncs/s", "cpu/ep-sync", "cmds/s", "scripts/s", "in B/s", "out B/s", "cmds/eps", "in/eps", "out/eps")
	for _, r := range append(rows, before, after) {
		fmt.Fprintf(&b, "%-32s %12.0f %9.2fµs %10.0f %10.0f %12.0f %12.0f %8.2f %8.0f %8.0f\n",
			r.label, r.epSyncsPerSec(), r.cpuPerEpSync(), r.perSec(r.commands), r.perSec(r.scripts),
			r.perSec(r.bytesIn), r.perSec(r.bytesOut),
			r.commands/r.epSyncs, r.bytesIn/r.epSyncs, r.bytesOut/r.epSyncs)
	}
	t.Log(b.String())

	first, last := rows[0], rows[len(rows)-1]
	for _, r := range rows {
		if !cluster && r.cpuPerEpSync() > 10 {
			t.Errorf("%s: %.2fµs of Redis CPU per endpoint-sync, want at most 10µs", r.label, r.cpuPerEpSync())
		}
	}
	if len(rows) > 1 && last.cpuPerEpSync() > 1.25*first.cpuPerEpSync() {
		t.Errorf("Redis CPU per endpoint-sync grows with N: %.2fµs at %s, %.2fµs at %s (want at most 1.25x)",
			first.cpuPerEpSync(), first.label, last.cpuPerEpSync(), last.label)
	}
	if got, want := after.perSec(after.commands), 0.75*before.perSec(before.commands); !cluster && got > want {
		t.Errorf("commands/s %0.f with half the endpoints idle, %0.f with all active: want a drop of at least a quarter", got, before.perSec(before.commands))
	}
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q", name, v)
	}
	return n
}

// scaleRow is one measured run.
type scaleRow struct {
	label                      string
	seconds                    float64
	epSyncs                    float64
	cpu                        float64 // seconds of Redis CPU
	commands, scripts          float64
	bytesIn, bytesOut, rounds  float64
	instances, endpoints, heap int
}

func (r scaleRow) perSec(v float64) float64 { return v / r.seconds }
func (r scaleRow) epSyncsPerSec() float64   { return r.epSyncs / r.seconds }
func (r scaleRow) cpuPerEpSync() float64    { return r.cpu / r.epSyncs * 1e6 }
func (r scaleRow) String() string {
	return fmt.Sprintf("%s: %.0f endpoint-syncs/s, %.2fµs Redis CPU each, %.0f commands/s (%.2f per endpoint-sync), %.0f scripts/s, %.0f B/s in, %.0f B/s out (%.0f and %.0f per endpoint-sync)",
		r.label, r.epSyncsPerSec(), r.cpuPerEpSync(), r.perSec(r.commands), r.commands/r.epSyncs, r.perSec(r.scripts),
		r.perSec(r.bytesIn), r.perSec(r.bytesOut), r.bytesIn/r.epSyncs, r.bytesOut/r.epSyncs)
}

// scaleFleet is N simulated instances on one private Redis, or Redis
// Cluster.
type scaleFleet struct {
	nodes    []*redistest.Server
	info     []*redis.Client // one for each node
	clients  []redis.UniversalClient
	stores   []*RedisStore
	breakers [][]*core.Breaker // [instance][endpoint]
	idle     float64           // Redis's CPU seconds per second with no instance
	active   atomic.Int64      // endpoints 0 to active-1 get calls
	calls    atomic.Int64
	stop     chan struct{}
	wg       sync.WaitGroup
}

const scaleGroup = 10 // instances per redis.Client and per traffic goroutine

func startScaleFleet(t *testing.T, n, e int, cluster bool) *scaleFleet {
	t.Helper()
	f := &scaleFleet{stop: make(chan struct{})}
	if cluster {
		f.nodes = redistest.StartCluster(t, 3).Nodes
	} else {
		f.nodes = []*redistest.Server{redistest.Start(t)}
	}
	var addrs []string
	for _, node := range f.nodes {
		c := redis.NewClient(&redis.Options{Addr: node.Addr()})
		t.Cleanup(func() { _ = c.Close() })
		f.info, addrs = append(f.info, c), append(addrs, node.Addr())
	}
	// What Redis spends by itself (its timers, the INFO calls) is not what
	// the instances cost: it is taken off every measurement.
	_, _, i0 := f.counters(t)
	began := time.Now()
	time.Sleep(2 * time.Second)
	_, _, i1 := f.counters(t)
	f.idle = (i1["used_cpu_sys"] + i1["used_cpu_user"] - i0["used_cpu_sys"] - i0["used_cpu_user"]) / time.Since(began).Seconds()
	t.Logf("Redis alone: %.2fms of CPU per second", f.idle*1e3)
	f.active.Store(int64(e))
	for i := range n {
		if i%scaleGroup == 0 {
			// Several addresses make a cluster client.
			f.clients = append(f.clients, redis.NewUniversalClient(&redis.UniversalOptions{
				Addrs: addrs, ContextTimeoutEnabled: true, PoolSize: 32,
				DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
			}))
		}
		m, err := core.NewManager(core.ManagerConfig{})
		if err != nil {
			t.Fatal(err)
		}
		s, err := NewRedisStore(RedisConfig{
			Client: f.clients[len(f.clients)-1], InstanceID: fmt.Sprintf("inst-%d", i),
			SyncInterval: time.Second, OpTimeout: 2 * time.Second, Logger: fileQuiet,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.AttachManager(m); err != nil {
			t.Fatal(err)
		}
		row := make([]*core.Breaker, e)
		for j := range e {
			if row[j], err = breakerOf(m, fmt.Sprintf("GET /api/v1/resource-%d/{id}", j)); err != nil {
				t.Fatal(err)
			}
		}
		f.stores = append(f.stores, s)
		f.breakers = append(f.breakers, row)
	}
	// Each instance calls each endpoint once per 100ms: a tenth of them
	// every 10ms, spread over the groups.
	for g := 0; g < n; g += scaleGroup {
		rows := f.breakers[g:min(g+scaleGroup, n)]
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			made := make([][]int, len(rows)) // calls made per breaker
			for i := range made {
				made[i] = make([]int, e)
			}
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for k := 0; ; k++ {
				select {
				case <-f.stop:
					return
				case <-tick.C:
				}
				active := int(f.active.Load())
				for i, row := range rows {
					for j := (k + i) % 10; j < active; j += 10 {
						p, err := row[j].Allow()
						if err != nil {
							continue
						}
						// One call in 100 fails: never 5 in a row, far
						// below any rate threshold.
						o := core.Success
						if made[i][j]++; made[i][j]%100 == 0 {
							o = core.Failure
						}
						f.calls.Add(1)
						p.Report(o, 0)
					}
				}
			}
		}()
	}
	return f
}

// warmUp waits until every store has made a few sync rounds with full
// windows.
func (f *scaleFleet) warmUp(t *testing.T) {
	t.Helper()
	time.Sleep(3 * time.Second)
	syncRounds(t, 1, "after warming up", f.stores...)
	for _, s := range f.stores {
		if !s.healthy.Load() {
			t.Fatalf("%s lost Redis", s.InstanceID())
		}
	}
}

func (f *scaleFleet) counters(t *testing.T) (epSyncs, rounds float64, info map[string]float64) {
	t.Helper()
	for _, s := range f.stores {
		epSyncs += float64(s.epSyncs.Load())
		rounds += float64(s.rounds.Load())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info = map[string]float64{} // summed over the nodes
	for _, node := range f.info {
		text, err := node.Info(ctx, "cpu", "stats", "commandstats").Result()
		if err != nil {
			t.Fatal(err)
		}
		parseInfo(text, info)
	}
	return epSyncs, rounds, info
}

// parseInfo adds the figures of an INFO reply to info.
func parseInfo(text string, info map[string]float64) {
	for _, line := range strings.Split(text, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		if k == "cmdstat_evalsha" || k == "cmdstat_eval" {
			for _, kv := range strings.Split(v, ",") {
				if c, ok := strings.CutPrefix(kv, "calls="); ok {
					n, _ := strconv.ParseFloat(c, 64)
					info["scripts"] += n
				}
			}
			continue
		}
		if name, ok := strings.CutPrefix(k, "cmdstat_"); ok {
			// calls=N,usec=N,...: per command, scripts' own included.
			for _, kv := range strings.Split(v, ",") {
				f, n, _ := strings.Cut(kv, "=")
				if f == "calls" || f == "usec" {
					x, _ := strconv.ParseFloat(n, 64)
					info[f+":"+name] += x
				}
			}
		}
		if n, err := strconv.ParseFloat(v, 64); err == nil {
			info[k] += n
		}
	}
}

func (f *scaleFleet) measure(t *testing.T, d time.Duration) scaleRow {
	t.Helper()
	e0, r0, i0 := f.counters(t)
	start := time.Now()
	time.Sleep(d)
	e1, r1, i1 := f.counters(t)
	secs := time.Since(start).Seconds()
	for _, s := range f.stores {
		if !s.healthy.Load() {
			t.Errorf("%s lost Redis during the measurement", s.InstanceID())
		}
	}
	delta := func(k string) float64 { return i1[k] - i0[k] }
	if os.Getenv("BULWARK_SCALE_COMMANDS") != "" {
		for k := range i1 {
			if name, ok := strings.CutPrefix(k, "usec:"); ok && delta(k) > 0 {
				t.Logf("%-12s %8.0f calls/s %8.2fµs each %6.3f core", name, delta("calls:"+name)/d.Seconds(), delta(k)/max(delta("calls:"+name), 1), delta(k)/1e6/d.Seconds())
			}
		}
		t.Logf("cpu user %.3f sys %.3f", delta("used_cpu_user"), delta("used_cpu_sys"))
	}
	return scaleRow{
		seconds: secs, epSyncs: e1 - e0, rounds: r1 - r0,
		cpu:      max(delta("used_cpu_sys")+delta("used_cpu_user")-f.idle*secs, 0),
		commands: delta("total_commands_processed"), scripts: delta("scripts"),
		bytesIn: delta("total_net_input_bytes"), bytesOut: delta("total_net_output_bytes"),
		instances: len(f.stores),
	}
}

func (f *scaleFleet) close(t *testing.T) {
	t.Helper()
	close(f.stop)
	f.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range f.stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Close(ctx); err != nil {
				t.Errorf("close %s: %v", s.InstanceID(), err)
			}
		}()
	}
	wg.Wait()
	for _, c := range f.clients {
		_ = c.Close()
	}
	for _, node := range f.nodes {
		node.Kill()
	}
}
