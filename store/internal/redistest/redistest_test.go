package redistest

import (
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
