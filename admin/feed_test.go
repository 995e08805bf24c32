package admin_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/bulwark-go/bulwark/admin"
	"github.com/bulwark-go/bulwark/alert"
	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
	"github.com/bulwark-go/bulwark/internal/wait"
)

// The feed's protocol names, as the package documentation gives them.
const (
	subprotocol = "bulwark.v1"
	tokenPrefix = "bulwark.token."
	patience    = 10 * time.Second
)

type feedMsg struct {
	Type     string            `json:"type"`
	Seq      uint64            `json:"seq"`
	Endpoint string            `json:"endpoint"`
	OldState events.State      `json:"old_state"`
	NewState events.State      `json:"new_state"`
	Breakers []json.RawMessage `json:"breakers"`
	raw      []byte
}

func wsURL(srv *httptest.Server, path string) string {
	return "ws" + strings.TrimPrefix(srv.URL, "http") + path
}

func dial(t testing.TB, srv *httptest.Server, opts *websocket.DialOptions) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, wsURL(srv, "/ws"), opts)
	if err != nil {
		code := 0
		if resp != nil {
			code = resp.StatusCode
		}
		t.Fatalf("dial: %v (HTTP %d)", err, code)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// dialStatus dials and expects the handshake to fail with an HTTP status.
func dialStatus(t testing.TB, srv *httptest.Server, opts *websocket.DialOptions) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, wsURL(srv, "/ws"), opts)
	if err == nil {
		c.CloseNow()
		t.Fatal("dial succeeded")
	}
	if resp == nil {
		t.Fatalf("dial failed without a response: %v", err)
	}
	return resp.StatusCode
}

func read(t testing.TB, c *websocket.Conn) feedMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	typ, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if typ != websocket.MessageText {
		t.Fatalf("message type %v", typ)
	}
	var m feedMsg
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	m.raw = b
	return m
}

// readEvent skips periodic snapshots.
func readEvent(t testing.TB, c *websocket.Conn) feedMsg {
	t.Helper()
	for {
		if m := read(t, c); m.Type != "snapshot" {
			return m
		}
	}
}

func TestFeedSnapshotThenEventsInOrder(t *testing.T) {
	f := newFixture(t, admin.Config{})
	b := f.breaker(t, "api-service")
	b.ForceOpen("before connect")
	wait.For(t, patience, "the first event", func() bool { return admin.Seq(f.h) == 1 })

	c := dial(t, f.srv, nil)
	snap := read(t, c)
	if snap.Type != "snapshot" || snap.Seq != 1 || len(snap.Breakers) != 1 {
		t.Fatalf("first message: %s", snap.raw)
	}
	var st struct{ Breakers []core.Snapshot }
	if err := json.Unmarshal(snap.raw, &st); err != nil || st.Breakers[0].State != events.ForcedOpen {
		t.Fatalf("snapshot body: %v %s", err, snap.raw)
	}
	if got, want := keys(t, snap.raw), []string{"adaptive_limits", "alerts", "breakers", "bulkheads", "faults", "generated_at", "health", "per_user", "per_user_rate_limit", "rate_limits", "seq", "slos", "type"}; !slices.Equal(got, want) {
		t.Fatalf("snapshot keys %v, want %v", got, want)
	}

	want := []struct{ from, to events.State }{
		{events.ForcedOpen, events.Closed}, {events.Closed, events.Disabled}, {events.Disabled, events.Closed},
		{events.Closed, events.ForcedOpen}, {events.ForcedOpen, events.HalfOpen},
	}
	b.Reset()
	b.Disable()
	b.Reset()
	b.ForceOpen("again")
	b.Release("probe")
	for i, w := range want {
		m := read(t, c)
		if m.Type != "state_change" || m.Seq != uint64(2+i) || m.OldState != w.from || m.NewState != w.to || m.Endpoint != "api-service" {
			t.Fatalf("event %d: %s", i, m.raw)
		}
	}

	// Other kinds carry their own type, and a seq like every event.
	f.m.Bus().Publish(events.SLOBurn{Type: events.TypeSLOBurn, Endpoint: "api-service", Burning: true})
	f.m.Bus().Publish(alert.Alert{ID: "a1", Severity: alert.Warning, Message: "hello"})
	f.m.Bus().Publish(events.ConfigChange{Type: events.TypeConfigChange, Endpoint: "api-service", Source: "runtime", Version: 3, Timestamp: seedTime})
	if m := read(t, c); m.Type != "slo_burn" || m.Seq != 7 || strings.Count(string(m.raw), `"type"`) != 1 {
		t.Fatalf("slo burn: %s", m.raw)
	}
	if m := read(t, c); m.Type != "alert" || m.Seq != 8 {
		t.Fatalf("alert: %s", m.raw)
	}
	m := read(t, c)
	if want := `{"type":"config_change","endpoint":"api-service","source":"runtime","version":3,"timestamp":"2025-10-08T12:00:00Z","seq":9}`; string(m.raw) != want {
		t.Fatalf("config change\n got %s\nwant %s", m.raw, want)
	}
}

func TestFeedPeriodicSnapshots(t *testing.T) {
	f := newFixture(t, admin.Config{SnapshotInterval: 20 * time.Millisecond})
	f.breaker(t, "api")
	c := dial(t, f.srv, nil)
	var last uint64
	for range 3 {
		m := read(t, c)
		if m.Type != "snapshot" || len(m.Breakers) != 1 || m.Seq < last {
			t.Fatalf("%s", m.raw)
		}
		last = m.Seq
	}
}

func TestFeedOrigin(t *testing.T) {
	f := newFixture(t, admin.Config{OriginPatterns: []string{"*.example.com"}})
	hdr := func(origin string) *websocket.DialOptions {
		return &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {origin}}}
	}
	if code := dialStatus(t, f.srv, hdr("https://evil.example.net")); code != http.StatusForbidden {
		t.Fatalf("foreign origin: %d", code)
	}
	if code := dialStatus(t, f.srv, hdr("null")); code != http.StatusForbidden {
		t.Fatalf("null origin: %d", code)
	}
	if n := admin.Subscribers(f.h); n != 0 {
		t.Fatalf("a rejected origin holds a slot: %d", n)
	}
	// Same host, an allowed pattern, and no Origin at all (not a browser).
	for _, o := range []string{f.srv.URL, "https://app.example.com", ""} {
		var opts *websocket.DialOptions
		if o != "" {
			opts = hdr(o)
		}
		c := dial(t, f.srv, opts)
		if m := read(t, c); m.Type != "snapshot" {
			t.Fatalf("%s: %s", o, m.raw)
		}
		c.Close(websocket.StatusNormalClosure, "")
	}
}

func TestFeedSubscriberLimit(t *testing.T) {
	f := newFixture(t, admin.Config{MaxSubscribers: 2})
	c1 := dial(t, f.srv, nil)
	read(t, c1)
	rx, err := f.h.Register(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if code := dialStatus(t, f.srv, nil); code != http.StatusServiceUnavailable {
		t.Fatalf("third subscriber: %d", code)
	}
	if _, err := f.h.Register(t.Context()); !errors.Is(err, admin.ErrTooManySubscribers) {
		t.Fatalf("third receiver: %v", err)
	}
	// A slot frees when a client leaves.
	rx.Close()
	c1.Close(websocket.StatusNormalClosure, "bye")
	wait.For(t, patience, "the slots to free", func() bool { return admin.Subscribers(f.h) == 0 })
	c2 := dial(t, f.srv, nil)
	read(t, c2)
}

func TestFeedToken(t *testing.T) {
	f := newFixture(t, admin.Config{Token: testToken})
	if code := dialStatus(t, f.srv, nil); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d", code)
	}
	if code := dialStatus(t, f.srv, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer wrong-wrong-wrong-wrong"}}}); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", code)
	}
	bad := tokenPrefix + base64.RawURLEncoding.EncodeToString([]byte("nope-nope-nope-nope"))
	if code := dialStatus(t, f.srv, &websocket.DialOptions{Subprotocols: []string{subprotocol, bad}}); code != http.StatusUnauthorized {
		t.Fatalf("wrong subprotocol token: %d", code)
	}
	if code := dialStatus(t, f.srv, &websocket.DialOptions{Subprotocols: []string{subprotocol, tokenPrefix + "%%%"}}); code != http.StatusUnauthorized {
		t.Fatalf("undecodable subprotocol token: %d", code)
	}

	c := dial(t, f.srv, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + testToken}}})
	read(t, c)
	// The browser way: the token rides in a subprotocol, which is never echoed.
	tok := tokenPrefix + base64.RawURLEncoding.EncodeToString([]byte(testToken))
	c2 := dial(t, f.srv, &websocket.DialOptions{Subprotocols: []string{subprotocol, tok}})
	if c2.Subprotocol() != subprotocol {
		t.Fatalf("selected subprotocol %q", c2.Subprotocol())
	}
	read(t, c2)
}

func TestFeedPings(t *testing.T) {
	f := newFixture(t, admin.Config{PingInterval: 10 * time.Millisecond})
	var pings atomic.Int32
	c := dial(t, f.srv, &websocket.DialOptions{OnPingReceived: func(context.Context, []byte) bool {
		pings.Add(1)
		return true
	}})
	read(t, c)
	ctx := c.CloseRead(t.Context()) // reading answers the pings
	wait.For(t, patience, "pings", func() bool { return pings.Load() >= 3 })
	if ctx.Err() != nil {
		t.Fatal("connection ended")
	}
}

func TestFeedCloseSaysGoingAway(t *testing.T) {
	f := newFixture(t, admin.Config{})
	c := dial(t, f.srv, nil)
	read(t, c)
	closed := make(chan error, 1)
	go func() { closed <- f.h.Close(context.Background()) }()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	_, _, err := c.Read(ctx) // reading also answers the close
	if websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("read after Close: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := admin.Feeds(f.h); n != 0 {
		t.Fatalf("Close returned with %d feed connections still served", n)
	}
	if code := dialStatus(t, f.srv, nil); code != http.StatusServiceUnavailable {
		t.Fatalf("dial after Close: %d", code)
	}
	if r := do(t, "GET", f.srv.URL+"/status", "", ""); r.code != 200 {
		t.Fatalf("status after Close: %d", r.code)
	}
}

func TestCloseCutsASilentClient(t *testing.T) {
	// A client that never reads never answers the close: Close cuts its
	// connection after a grace period rather than wait for it.
	f := newFixture(t, admin.Config{})
	c := dial(t, f.srv, nil)
	read(t, c)
	start := time.Now()
	if err := f.h.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("Close took %v: it waited for the client", d)
	}
	if n := admin.Feeds(f.h); n != 0 {
		t.Fatalf("Close returned with %d feed connections still served", n)
	}
}

func TestCloseHonoursItsContext(t *testing.T) {
	f := newFixture(t, admin.Config{})
	c := dial(t, f.srv, nil) // never reads, so never answers the close
	read(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.h.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close with a done context: %v", err)
	}
	// It cut the connection on its way out.
	wait.For(t, patience, "the feed connection to end", func() bool { return admin.Feeds(f.h) == 0 })
	if err := f.h.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// smallBuffers makes the kernel's socket buffers tiny so that a client that
// stops reading blocks the server's writes after a few kilobytes.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

func TestSlowClientIsDisconnectedFastOneKeepsUp(t *testing.T) {
	clock := core.NewFakeClock(seedTime)
	m := newManager(t, clock)
	h, _ := newHandler(t, admin.Config{Manager: m, SubscriberBuffer: 2})
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = smallBuffers{srv.Listener}
	srv.Start()
	t.Cleanup(srv.Close)

	slowClient := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(4096)
		}
		return c, err
	}}}
	slow := dial(t, srv, &websocket.DialOptions{HTTPClient: slowClient}) // never reads
	fast := dial(t, srv, nil)
	read(t, fast)

	b := breaker(t, m, "api")
	reason := strings.Repeat("a long reason to fill the socket buffers ", 25) // about 1 KiB per event
	var seq uint64
	step := func(i int) {
		if i%2 == 0 {
			b.ForceOpen(reason)
		} else {
			b.Reset()
		}
		seq++
		if m := read(t, fast); m.Seq != seq {
			t.Fatalf("fast client got seq %d, want %d", m.Seq, seq)
		}
	}
	i := 0
	for ; admin.Subscribers(h) == 2; i++ {
		if i == 5000 {
			t.Fatal("the slow client was never disconnected")
		}
		step(i)
	}
	// The fast client keeps receiving after the slow one is gone.
	for end := i + 10; i < end; i++ {
		step(i) // alternating on from where it was: a repeated ForceOpen emits nothing
	}
	// The slow client's connection ends: it reads what was buffered, then
	// the close (or the cut, if the server was stuck writing to it).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, _, err := slow.Read(ctx)
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			t.Fatal("the slow client's connection is still open")
		}
		if s := websocket.CloseStatus(err); s != -1 && s != websocket.StatusPolicyViolation {
			t.Fatalf("slow client closed with %v", err)
		}
		t.Logf("slow client ended: %v", err)
		break
	}
}

func TestConcurrentFeedClients(t *testing.T) {
	f := newFixture(t, admin.Config{SubscriberBuffer: 1024, SnapshotInterval: 10 * time.Millisecond})
	b := f.breaker(t, "api")
	const clients, rounds = 4, 5
	errs := make(chan error, clients*rounds)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for range rounds {
				ctx, cancel := context.WithTimeout(context.Background(), patience)
				c, _, err := websocket.Dial(ctx, wsURL(f.srv, "/ws"), nil)
				if err == nil {
					var typ websocket.MessageType
					var msg []byte
					if typ, msg, err = c.Read(ctx); err == nil && (typ != websocket.MessageText || !json.Valid(msg)) {
						err = errors.New("not a JSON text message: " + string(msg))
					}
					c.CloseNow()
				}
				cancel()
				if err != nil {
					errs <- err
				}
			}
		})
	}
	for range 200 {
		b.ForceOpen("churn")
		b.Reset()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("client: %v", err)
	}
	wait.For(t, patience, "every client to leave", func() bool { return admin.Subscribers(f.h) == 0 })
}
