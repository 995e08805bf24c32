package main

// Helpers of the end-to-end tests: build the example app once, run it as a
// real process, talk to it over HTTP and follow its WebSocket feed.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

const (
	// e2eToken is the admin token every app under test gets.
	e2eToken = "e2e-admin-token-0123456789"
	// upstreamBreaker is the outbound breaker's endpoint, as the app names it.
	upstreamBreaker = upstreamEndpoint

	readyTimeout = 15 * time.Second // from exec to "Press Ctrl+C to stop."
	stopTimeout  = 15 * time.Second // from SIGTERM to exit (the app drains for at most 10s)
	readyLine    = "Press Ctrl+C to stop."
)

var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// appBinary builds the example app once per test binary, without the race
// detector (the compiled dependencies are in the build cache after go vet
// or any earlier build, so this is a compile of package main and a link).
func appBinary(t *testing.T) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the end-to-end tests stop the app with SIGTERM")
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "bulwark-e2e-")
		if buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "example-app")
		start := time.Now()
		// go test puts its own GOROOT/bin first on PATH.
		out, err := exec.Command("go", "build", "-o", buildBin, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build -o %s .: %v\n%s", buildBin, err, out)
			return
		}
		t.Logf("built the example app in %v", time.Since(start).Round(time.Millisecond))
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// app is one running example-app process.
type app struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd

	stdout *readyWriter
	stderr *syncBuffer

	// base is http://host:port; urls maps the printed labels ("Dashboard",
	// "Metrics", "API", "Upstream", ...) to their first word.
	base string
	urls map[string]string

	exited  chan struct{} // closed when the process has ended
	waitErr error         // Wait's result, set before exited is closed
}

// startApp runs the example app with -addr 127.0.0.1:0, -data dataDir and
// the test token, plus args, and waits until it prints that it is ready.
// The process is killed when the test ends if it still runs.
func startApp(t *testing.T, name, dataDir string, args ...string) *app {
	t.Helper()
	bin := appBinary(t)
	all := append([]string{"-addr", "127.0.0.1:0", "-data", dataDir, "-admin-token", e2eToken}, args...)
	a := &app{
		t: t, name: name,
		cmd:    exec.Command(bin, all...),
		stdout: newReadyWriter(readyLine),
		stderr: &syncBuffer{},
		exited: make(chan struct{}),
	}
	a.cmd.Env = appEnv()
	a.cmd.Stdout, a.cmd.Stderr = a.stdout, a.stderr
	a.cmd.WaitDelay = time.Second // do not hang on output pipes after the process ended
	setDeathSignal(a.cmd)
	if err := a.cmd.Start(); err != nil {
		t.Fatalf("%s: start: %v", name, err)
	}
	go func() {
		a.waitErr = a.cmd.Wait()
		close(a.exited)
	}()
	t.Cleanup(func() {
		a.kill()
		if t.Failed() {
			t.Logf("%s (%s) stderr:\n%s", a.name, strings.Join(all, " "), a.stderr.String())
		}
	})

	select {
	case <-a.stdout.ready:
	case <-a.exited:
		t.Fatalf("%s exited before it was ready (%v)\nstdout:\n%s\nstderr:\n%s", name, a.waitErr, a.stdout.String(), a.stderr.String())
	case <-time.After(readyTimeout):
		a.kill()
		t.Fatalf("%s did not print %q within %v\nstdout:\n%s\nstderr:\n%s", name, readyLine, readyTimeout, a.stdout.String(), a.stderr.String())
	}
	a.urls = parseBanner(a.stdout.String())
	dash := a.urls["Dashboard"]
	if !strings.HasPrefix(dash, "http://127.0.0.1:") || !strings.HasSuffix(dash, "/admin/") {
		t.Fatalf("%s: no dashboard URL in its banner:\n%s", name, a.stdout.String())
	}
	a.base = strings.TrimSuffix(dash, "/admin/")
	if got := a.urls["Admin token"]; got != e2eToken {
		t.Fatalf("%s: banner shows admin token %q, want the one given", name, got)
	}
	return a
}

// appEnv is the test's environment without the variables the app reads,
// so that a developer's REDIS_URL (say) cannot reach the app under test.
func appEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "REDIS_URL", "BULWARK_ADMIN_TOKEN", "ADDR", "DATA_DIR":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// parseBanner reads the "  Label:  value  (comment)" lines the app prints.
func parseBanner(out string) map[string]string {
	m := map[string]string{}
	for line := range strings.SplitSeq(out, "\n") {
		if !strings.HasPrefix(line, "  ") {
			continue
		}
		label, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if f := strings.Fields(rest); ok && len(f) > 0 {
			m[label] = f[0]
		}
	}
	return m
}

// stop sends SIGTERM and requires a clean exit (code 0) within stopTimeout.
func (a *app) stop() {
	a.t.Helper()
	start := time.Now()
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		a.t.Fatalf("%s: SIGTERM: %v", a.name, err)
	}
	select {
	case <-a.exited:
	case <-time.After(stopTimeout):
		a.kill()
		a.t.Fatalf("%s did not exit within %v of SIGTERM\nstderr:\n%s", a.name, stopTimeout, a.stderr.String())
	}
	if code := a.cmd.ProcessState.ExitCode(); code != 0 || a.waitErr != nil {
		a.t.Fatalf("%s: exit code %d after SIGTERM (%v), want 0\nstderr:\n%s", a.name, code, a.waitErr, a.stderr.String())
	}
	a.t.Logf("%s: SIGTERM → exit 0 in %v", a.name, time.Since(start).Round(time.Millisecond))
}

// kill ends the process at once with SIGKILL, if it still runs, and waits
// for it.
func (a *app) kill() {
	select {
	case <-a.exited:
		return
	default:
	}
	_ = a.cmd.Process.Kill()
	<-a.exited
}

// httpClient is for single requests to the apps (the load test has its
// own).
var httpClient = &http.Client{Timeout: 5 * time.Second}

// do sends a request to the app and returns the status and body; token
// adds the admin token.
func (a *app) do(method, path, body string, token bool) (int, http.Header, []byte) {
	a.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, a.base+path, r)
	if err != nil {
		a.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token {
		req.Header.Set("Authorization", "Bearer "+e2eToken)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		a.t.Fatalf("%s: %s %s: %v", a.name, method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatalf("%s: %s %s: reading the body: %v", a.name, method, path, err)
	}
	return resp.StatusCode, resp.Header, b
}

func (a *app) get(path string) (int, http.Header, []byte) {
	a.t.Helper()
	return a.do(http.MethodGet, path, "", false)
}

// getJSON GETs path, requires 200 and decodes the body into v.
func (a *app) getJSON(path string, v any) {
	a.t.Helper()
	code, _, body := a.get(path)
	if code != http.StatusOK {
		a.t.Fatalf("%s: GET %s: %d %s", a.name, path, code, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		a.t.Fatalf("%s: GET %s: %v in %s", a.name, path, err, body)
	}
}

// breakerView is the part of a breaker's admin status the tests read.
type breakerView struct {
	Endpoint          string    `json:"endpoint"`
	State             string    `json:"state"`
	Reason            string    `json:"reason"`
	LastStateChange   time.Time `json:"last_state_change"`
	OpenUntil         time.Time `json:"open_until"`
	RetryAfterSeconds int64     `json:"retry_after_seconds"`
	HeldBy            string    `json:"held_by"`
	TotalRequests     int64     `json:"total_requests"`
}

// breaker reads one breaker from GET /admin/status/{endpoint}.
func (a *app) breaker(endpoint string) breakerView {
	a.t.Helper()
	var st struct {
		Breaker *breakerView `json:"breaker"`
	}
	a.getJSON("/admin/status/"+url.PathEscape(endpoint), &st)
	if st.Breaker == nil {
		a.t.Fatalf("%s: /admin/status/%s has no breaker", a.name, endpoint)
	}
	return *st.Breaker
}

// breakerInStatus finds one breaker in the full GET /admin/status.
func (a *app) breakerInStatus(endpoint string) breakerView {
	a.t.Helper()
	var st struct {
		Breakers []breakerView `json:"breakers"`
	}
	a.getJSON("/admin/status", &st)
	for _, b := range st.Breakers {
		if b.Endpoint == endpoint {
			return b
		}
	}
	a.t.Fatalf("%s: /admin/status lists no breaker %q", a.name, endpoint)
	return breakerView{}
}

// control applies a breaker action through POST /admin/breakers/{endpoint}
// and requires 200 with the given scope.
func (a *app) control(endpoint, action, reason, scope string) {
	a.t.Helper()
	body, _ := json.Marshal(map[string]string{"action": action, "reason": reason})
	code, _, resp := a.do(http.MethodPost, "/admin/breakers/"+url.PathEscape(endpoint), string(body), true)
	if code != http.StatusOK {
		a.t.Fatalf("%s: %s on %s: %d %s", a.name, action, endpoint, code, resp)
	}
	var got struct {
		Scope string `json:"scope"`
	}
	if err := json.Unmarshal(resp, &got); err != nil || got.Scope != scope {
		a.t.Fatalf("%s: %s on %s answered %s, want scope %q", a.name, action, endpoint, resp, scope)
	}
}

// setUpstream switches the app's in-process upstream.
func (a *app) setUpstream(mode string) {
	a.t.Helper()
	code, _, body := a.do(http.MethodPost, "/demo/upstream?mode="+mode, "", true)
	if code != http.StatusOK {
		a.t.Fatalf("%s: upstream mode %s: %d %s", a.name, mode, code, body)
	}
}

// metric returns the value of one sample line of GET /metrics, such as
// `circuit_breaker_state{endpoint="upstream:quotes"}`, and whether it is
// there.
func (a *app) metric(series string) (string, bool) {
	a.t.Helper()
	code, _, body := a.get("/metrics")
	if code != http.StatusOK {
		a.t.Fatalf("%s: GET /metrics: %d", a.name, code)
	}
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// feedMsg is the part of a feed message the tests read.
type feedMsg struct {
	Type     string `json:"type"`
	Seq      uint64 `json:"seq"`
	Endpoint string `json:"endpoint"`
	OldState string `json:"old_state"`
	NewState string `json:"new_state"`
	Reason   string `json:"reason"`
	Status   string `json:"status"` // store_status
	raw      string
}

// feed follows an app's WebSocket feed, /admin/ws.
type feed struct {
	t    *testing.T
	name string
	conn *websocket.Conn
	msgs chan feedMsg // closed when the connection ends
	done chan struct{}
	err  error // why reading stopped, set before msgs is closed
}

// dialFeed connects to the app's feed with the token in the Authorization
// header, as a non-browser client does.
func dialFeed(t *testing.T, a *app) *feed {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	u := "ws" + strings.TrimPrefix(a.base, "http") + "/admin/ws"
	conn, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{
		HTTPHeader:   http.Header{"Authorization": {"Bearer " + e2eToken}},
		Subprotocols: []string{"bulwark.v1"},
	})
	if err != nil {
		t.Fatalf("%s: dial %s: %v", a.name, u, err)
	}
	if p := conn.Subprotocol(); p != "bulwark.v1" {
		t.Fatalf("%s: feed selected subprotocol %q, want bulwark.v1", a.name, p)
	}
	conn.SetReadLimit(8 << 20)
	f := &feed{t: t, name: a.name, conn: conn, msgs: make(chan feedMsg, 4096), done: make(chan struct{})}
	go f.read()
	t.Cleanup(f.close)
	return f
}

func (f *feed) read() {
	defer close(f.done)
	defer close(f.msgs)
	for {
		_, data, err := f.conn.Read(context.Background())
		if err != nil {
			f.err = err
			return
		}
		m := feedMsg{raw: string(data)}
		if err := json.Unmarshal(data, &m); err != nil {
			f.err = fmt.Errorf("undecodable message %q: %w", data, err)
			return
		}
		select {
		case f.msgs <- m:
		default:
			f.err = fmt.Errorf("the test fell %d messages behind the feed", cap(f.msgs))
			return
		}
	}
}

// next returns the next message, failing the test past timeout or if the
// feed ended.
func (f *feed) next(timeout time.Duration) feedMsg {
	f.t.Helper()
	select {
	case m, ok := <-f.msgs:
		if !ok {
			f.t.Fatalf("%s: the feed ended: %v", f.name, f.err)
		}
		return m
	case <-time.After(timeout):
		f.t.Fatalf("%s: no feed message within %v", f.name, timeout)
		return feedMsg{}
	}
}

// waitFor skips messages until one satisfies match, and returns it.
func (f *feed) waitFor(timeout time.Duration, what string, match func(feedMsg) bool) feedMsg {
	f.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case m, ok := <-f.msgs:
			if !ok {
				f.t.Fatalf("%s: the feed ended before %s: %v", f.name, what, f.err)
			}
			if match(m) {
				return m
			}
		case <-deadline.C:
			f.t.Fatalf("%s: no %s on the feed within %v", f.name, what, timeout)
		}
	}
}

func (f *feed) close() {
	_ = f.conn.Close(websocket.StatusNormalClosure, "")
	select {
	case <-f.done:
	case <-time.After(5 * time.Second):
		_ = f.conn.CloseNow()
		<-f.done
	}
}

// readyWriter collects a process's output and closes ready once a line
// equal to line has been written.
type readyWriter struct {
	syncBuffer
	line  string
	ready chan struct{}
	once  sync.Once
}

func newReadyWriter(line string) *readyWriter {
	return &readyWriter{line: line, ready: make(chan struct{})}
}

func (w *readyWriter) Write(p []byte) (int, error) {
	n, err := w.syncBuffer.Write(p)
	for l := range strings.SplitSeq(w.String(), "\n") {
		if strings.TrimSpace(l) == w.line {
			w.once.Do(func() { close(w.ready) })
		}
	}
	return n, err
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
