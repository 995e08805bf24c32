// Package redistest starts private redis-server processes for tests.
//
// Each Server listens on a free loopback port, keeps no data on disk and is
// killed when the test ends, so tests never touch a shared Redis:
//
//	srv := redistest.Start(t)
//	client := redis.NewClient(&redis.Options{Addr: srv.Addr()})
//
// When redis-server is not on PATH, Start skips the test, except when the
// environment variable CI is "true": there a missing server fails the test,
// so that CI never passes by skipping.
package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// startTimeout bounds how long a server may take to answer PING.
const startTimeout = 10 * time.Second

// Server is a private redis-server process.
type Server struct {
	tb    testing.TB
	bin   string
	port  int
	dir   string
	extra []string // more redis-server arguments

	mu     sync.Mutex
	proc   *os.Process // nil while stopped
	exited chan error  // receives the process's end once
}

// Start starts a redis-server on a free port of 127.0.0.1, waits until it
// answers PING and kills it when the test ends. It skips the test when
// redis-server is not installed (fails under CI=true).
func Start(tb testing.TB) *Server {
	tb.Helper()
	return start(tb, lookPath(tb, "redis-server"))
}

// lookPath finds a Redis program, skipping the test when it is missing
// (failing it under CI=true).
func lookPath(tb testing.TB, name string) string {
	tb.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		msg := name + " not installed: " + err.Error() + " (install Redis 6 or later to run these tests)"
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg + "; CI=true requires it")
		}
		tb.Skip(msg)
	}
	return bin
}

func start(tb testing.TB, bin string, extra ...string) *Server {
	tb.Helper()
	s := &Server{tb: tb, bin: bin, dir: tb.TempDir(), extra: extra}
	tb.Cleanup(s.Kill)
	// Another process can take the port between probing and binding it:
	// try a few ports.
	var last error
	for range 5 {
		port, err := freePort()
		if err != nil {
			tb.Fatalf("redistest: %v", err)
		}
		s.port = port
		if last = s.start(); last == nil {
			return s
		}
	}
	tb.Fatalf("redistest: %v", last)
	return nil
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Kill stops the server at once with SIGKILL, as a crash would, and waits
// for the process to end. Killing a stopped server does nothing.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	_ = s.proc.Kill() // works on a paused process too
	<-s.exited
	s.proc, s.exited = nil, nil
}

// Pause stops the server with SIGSTOP: connections stay open but nothing
// is answered, as with a hung or overloaded server. Resume undoes it.
// Where there are no such signals (Windows), it skips the test.
func (s *Server) Pause() { s.signal(sigStop) }

// Resume continues a paused server with SIGCONT.
func (s *Server) Resume() { s.signal(sigCont) }

func (s *Server) signal(sig os.Signal) {
	if sig == nil {
		s.tb.Skip("redistest: pausing a process needs Unix signals")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		_ = s.proc.Signal(sig)
	}
}

// Restart kills the server if it runs and starts it again on the same
// port, empty (nothing is persisted), waiting until it answers PING.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Kill()
	// The old socket may linger briefly; retry the bind for a while.
	deadline := time.Now().Add(startTimeout)
	for {
		err := s.start()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("redistest: restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--daemonize", "no",
		"--logfile", "",
	}
	cmd := exec.Command(s.bin, append(args, s.extra...)...)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(startTimeout)
	for {
		if ping(s.Addr()) == nil {
			s.proc, s.exited = cmd.Process, exited
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("redis-server on port %d exited (%v): %s", s.port, err, out.tail())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("redis-server on port %d did not answer PING within %s: %s", s.port, startTimeout, out.tail())
		}
	}
}

// ping sends PING over a fresh connection and checks for +PONG.
func ping(addr string) error {
	line, err := command(addr, "PING")
	if err != nil {
		return err
	}
	if line != "+PONG" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// command sends one inline command over a fresh connection and returns the
// reply: a status line, or the content of a bulk string.
func command(addr, cmd string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if !strings.HasPrefix(line, "$") {
		return line, nil
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil || n < 0 || n > 1<<20 {
		return "", fmt.Errorf("%s: bad reply %q", cmd, line)
	}
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(r, buf); err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("find a free port: not a TCP address")
	}
	return addr.Port, nil
}

// lockedBuffer collects the server's output for error messages.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 64<<10 { // keep it bounded; only the tail matters
		b.buf.Reset()
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) tail() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	if len(s) > 2000 {
		s = s[len(s)-2000:]
	}
	return s
}
