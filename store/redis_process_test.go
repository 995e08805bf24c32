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

// TestRedisTwoProcesses runs a second instance in another OS process (this
// test binary, re-executed as TestRedisPeerProcess) sharing one
// redis-server: a trip in either process opens the breaker in the other.
func TestRedisTwoProcesses(t *testing.T) {
	srv := redistest.Start(t)
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
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if l, ok := strings.CutPrefix(sc.Text(), "peer: "); ok {
				lines <- l
			}
		}
	}()
	expect := func(want string) {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok || l != want {
				t.Fatalf("peer said %q (open %v), want %q", l, ok, want)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("peer did not say %q", want)
		}
	}

	expect("ready")
	in := newInstance(t, srv, "parent", core.BreakerConfig{}, RedisConfig{})
	in.loaded(t, "from-parent")
	in.loaded(t, "from-child")
	in.breaker(t, "from-parent").Trip("tripped in the parent process")
	expect("open from-parent")
	if _, err := io.WriteString(stdin, "trip\n"); err != nil {
		t.Fatal(err)
	}
	fc := in.breaker(t, "from-child")
	wait.For(t, testWait, "the child's trip", func() bool { return fc.State() == core.Open })
	if r := fc.Snapshot().Reason; r != "tripped in the child process" {
		t.Errorf("reason %q", r)
	}
	if _, err := io.WriteString(stdin, "exit\n"); err != nil {
		t.Fatal(err)
	}
	expect("bye")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("peer process: %v", err)
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
	m, err := core.NewManager(core.ManagerConfig{})
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
		if e.Remote && e.NewState == core.Open {
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
		case "exit":
			say("bye")
			return
		}
	}
}
