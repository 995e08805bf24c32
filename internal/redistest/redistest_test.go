package redistest

import (
	"strings"
	"testing"
)

func TestStartKillRestart(t *testing.T) {
	s := Start(t)
	if err := ping(s.Addr()); err != nil {
		t.Fatal(err)
	}
	s.Kill()
	if err := ping(s.Addr()); err == nil {
		t.Fatal("server still answers after Kill")
	}
	s.Kill() // again: no-op
	s.Restart()
	if err := ping(s.Addr()); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}

func TestTwoServersHaveDifferentPorts(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.Addr() == b.Addr() {
		t.Fatalf("same address %s", a.Addr())
	}
}

func TestPauseResume(t *testing.T) {
	s := Start(t)
	s.Pause()
	if err := ping(s.Addr()); err == nil {
		t.Fatal("paused server answered")
	}
	s.Resume()
	if err := ping(s.Addr()); err != nil {
		t.Fatalf("after resume: %v", err)
	}
	s.Pause() // Kill (at cleanup) must end a paused server too
}

func TestCluster(t *testing.T) {
	c := StartCluster(t, 3)
	if len(c.Addrs()) != 3 {
		t.Fatal(c)
	}
	for _, n := range c.Nodes {
		if info, err := command(n.Addr(), "CLUSTER INFO"); err != nil || !strings.Contains(info, "cluster_known_nodes:3") {
			t.Fatalf("%s: %v %s", n.Addr(), err, info)
		}
	}
}
