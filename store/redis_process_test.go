package store

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
	"github.com/bulwark-go/bulwark/internal/redistest"
	"github.com/bulwark-go/bulwark/internal/wait"
)

// peerEnv carries the Redis address to the peer process.
const peerEnv = "BULWARK_REDIS_PEER_ADDR"

// peer is a second instance in another OS process: this test binary,
// re-executed as TestRedisPeerProcess, sharing srv. It talks on stdin and
// stdout.
type peer struct {
	t     *testing.T
	cmd   *exec.Cmd
	stdin io.Writer
	lines chan string
}

func startPeer(t *testing.T, srv *redistest.Server) *peer {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestRedisPeerProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), peerEnv+"="+srv.Addr())
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	p := &peer{t: t, cmd: cmd, stdin: stdin, lines: make(chan string, 16)}
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if l, ok := strings.CutPrefix(sc.Text(), "peer: "); ok {
				p.lines <- l
			}
		}
	}()
	p.expect("ready")
	return p
}

// expect waits for the peer to say want.
func (p *peer) expect(want string) {
	p.t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok || l != want {
			p.t.Fatalf("peer said %q (open %v), want %q", l, ok, want)
		}
	case <-time.After(30 * time.Second):
		p.t.Fatalf("peer did not say %q", want)
	}
}

func (p *peer) send(cmd string) {
	p.t.Helper()
	if _, err := io.WriteString(p.stdin, cmd+"\n"); err != nil {
		p.t.Fatal(err)
	}
}

// TestRedisTwoProcesses runs a second instance in another OS process
// sharing one redis-server: a trip in either process opens the breaker in
// the other.
func TestRedisTwoProcesses(t *testing.T) {
	srv := redistest.Start(t)
	p := startPeer(t, srv)
	in := newInstance(t, srv, "parent", core.BreakerConfig{}, RedisConfig{})
	in.loaded(t, "from-parent")
	in.loaded(t, "from-child")
	in.breaker(t, "from-parent").Trip("tripped in the parent process")
	p.expect("open from-parent")
	p.send("trip")
	fc := in.breaker(t, "from-child")
	wait.For(t, testWait, "the child's trip", func() bool { return fc.State() == events.Open })
	if r := fc.Snapshot().Reason; r != "tripped in the child process" {
		t.Errorf("reason %q", r)
	}
	p.send("exit")
	p.expect("bye")
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("peer process: %v", err)
	}
}

// peerHoldLease is the lease of the child's hold in
// TestRedisHoldOfAKilledProcessLapses.
const peerHoldLease = 600 * time.Millisecond

// A hold whose owner is killed lapses on the survivors within the lease and
// one sync interval of its last renewal, and the cluster goes HalfOpen by
// one transition; while the owner lives, its renewals keep the hold.
func TestRedisHoldOfAKilledProcessLapses(t *testing.T) {
	srv := redistest.Start(t)
	p := startPeer(t, srv)
	ins := []*instance{
		newInstance(t, srv, "parent-1", core.BreakerConfig{}, RedisConfig{}),
		newInstance(t, srv, "parent-2", core.BreakerConfig{}, RedisConfig{}),
	}
	times := &halfOpenTimes{at: map[string]time.Time{}}
	for _, in := range ins {
		in.loaded(t, "held-by-child")
		times.follow(in.s.InstanceID(), in.breaker(t, "held-by-child"))
	}
	p.send("hold")
	p.expect("held")
	for _, in := range ins {
		b := in.breaker(t, "held-by-child")
		wait.For(t, testWait, in.s.InstanceID()+" to apply the child's hold", func() bool {
			s := b.Snapshot()
			return s.State == events.ForcedOpen && s.HeldBy == "health child"
		})
	}
	time.Sleep(3 * peerHoldLease) // the child renews meanwhile
	for _, in := range ins {
		if _, ok := times.get(in.s.InstanceID()); ok {
			t.Fatalf("%s went HalfOpen while the child renewed its hold", in.s.InstanceID())
		}
	}
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
	killed := time.Now()
	const slack = 300 * time.Millisecond
	for _, in := range ins {
		name := in.s.InstanceID()
		wait.For(t, testWait, name+" to go HalfOpen", func() bool { _, ok := times.get(name); return ok })
		at, _ := times.get(name)
		t.Logf("%s HalfOpen %v after the kill (lease %v, sync interval %v)", name, at.Sub(killed), peerHoldLease, testSync)
		if d := at.Sub(killed); d > peerHoldLease+testSync+slack {
			t.Errorf("%s went HalfOpen %v after the owner was killed, want within the lease and a sync interval (%v)",
				name, d, peerHoldLease+testSync)
		}
	}
	settle(t, ins...)
	if n := ins[0].rec.count(isWin("held-by-child", events.HalfOpen)) + ins[1].rec.count(isWin("held-by-child", events.HalfOpen)); n != 1 {
		t.Errorf("%d cluster transitions to HalfOpen, want 1", n)
	}
}

// probeLeaseConfig is the breaker of the endpoint "probe-lease" in both
// processes of TestRedisProbeSlotsOfAKilledProcessReturn.
var probeLeaseConfig = core.BreakerConfig{
	Timeout: 100 * time.Millisecond, ProbeTimeout: 500 * time.Millisecond,
	HalfOpenMaxRequests: 2, SuccessThreshold: 2,
}

// Probe slots are leases: while the process that claimed every half-open
// slot lives, the other instance admits no probe, even past ProbeTimeout;
// once it is killed, the survivor admits one within ProbeTimeout.
func TestRedisProbeSlotsOfAKilledProcessReturn(t *testing.T) {
	srv := redistest.Start(t)
	p := startPeer(t, srv)
	in := newInstance(t, srv, "parent", probeLeaseConfig, RedisConfig{})
	in.loaded(t, "probe-lease")
	b := in.breaker(t, "probe-lease")
	p.send("claim")
	p.expect("claimed 2")
	wait.For(t, testWait, "the child's half-open round", func() bool { return b.State() == events.HalfOpen })

	// The child holds both slots, alive, for twice the probe timeout.
	pt := probeLeaseConfig.ProbeTimeout
	for end := time.Now().Add(2 * pt); time.Now().Before(end); time.Sleep(time.Millisecond) {
		if pm, err := b.Allow(); err == nil {
			pm.Report(core.Success, 0)
			t.Fatal("a probe admitted while the child holds every slot")
		}
	}
	if err := p.cmd.Process.Kill(); err != nil { // SIGKILL: no Close, nothing given back
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
	killed := time.Now()
	var waited time.Duration
	wait.For(t, testWait, "a probe on the survivor", func() bool {
		pm, err := b.Allow()
		if err != nil {
			time.Sleep(time.Millisecond)
			return false
		}
		waited = time.Since(killed)
		pm.Report(core.Success, 0)
		return true
	})
	t.Logf("the survivor admitted a probe %v after the kill (probe timeout %v, sync interval %v)", waited, pt, testSync)
	if slack := 250 * time.Millisecond; waited > pt+slack {
		t.Errorf("the survivor waited %v for a probe, want within the probe timeout %v (+%v)", waited, pt, slack)
	}
}

// TestRedisPeerProcess is the other process of TestRedisTwoProcesses; it
// does nothing unless started by it. It talks on stdin and stdout.
func TestRedisPeerProcess(t *testing.T) {
	addr := os.Getenv(peerEnv)
	if addr == "" {
		t.Skip("the second process of TestRedisTwoProcesses")
	}
	say := func(format string, args ...any) { fmt.Printf("peer: "+format+"\n", args...) }
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true, DialTimeout: time.Second})
	defer c.Close()
	m, err := core.NewManager(core.ManagerConfig{
		Endpoints: map[string]core.EndpointConfig{"probe-lease": {Breaker: &probeLeaseConfig}},
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewRedisStore(RedisConfig{Client: c, InstanceID: "child", SyncInterval: testSync})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	if err := s.AttachManager(m); err != nil {
		t.Fatal(err)
	}
	fromParent, _ := breakerOf(m, "from-parent")
	fromChild, _ := breakerOf(m, "from-child")
	fromParent.OnStateChange(func(e events.StateChange) {
		if e.Remote && e.NewState == events.Open {
			say("open from-parent")
		}
	})
	start := s.rounds.Load()
	wait.For(t, testWait, "a sync round", func() bool { return s.rounds.Load() > start+1 })
	say("ready")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		switch sc.Text() {
		case "trip":
			fromChild.Trip("tripped in the child process")
		case "hold":
			// A component of this process holds the breaker and renews
			// its lease, as a health monitor does, until the process dies.
			b, _ := breakerOf(m, "held-by-child")
			b.Hold("health child", "down", peerHoldLease)
			say("held")
			go func() {
				for {
					time.Sleep(peerHoldLease / 6)
					b.Hold("health child", "still down", peerHoldLease)
				}
			}()
		case "claim":
			// Open, then half-open here: this process wins the round and
			// takes every probe slot, and its probes never report.
			b, _ := breakerOf(m, "probe-lease")
			b.Trip("claim every probe slot")
			var held []core.Permit
			wait.For(t, testWait, "every probe slot", func() bool {
				if pm, err := b.Allow(); err == nil {
					held = append(held, pm)
				}
				return len(held) == probeLeaseConfig.HalfOpenMaxRequests
			})
			say("claimed %d", len(held))
		case "exit":
			say("bye")
			return
		}
	}
}
