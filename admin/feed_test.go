package admin_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
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
)

type feedMsg struct {
	Type     string            `json:"type"`
	Seq      uint64            `json:"seq"`
	Endpoint string            `json:"endpoint"`
	OldState core.State        `json:"old_state"`
	NewState core.State        `json:"new_state"`
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
		if m := read(t, c); m.Type != admin.TypeSnapshot {
			return m
		}
	}
}

func TestFeedSnapshotThenEventsInOrder(t *testing.T) {
	f := newFixture(t, admin.Config{})
	b := f.breaker(t, "api-service")
	b.ForceOpen("before connect")
	waitFor(t, "first event", func() bool { return f.h.Notifier().Seq() == 1 })

	c := dial(t, f.srv, nil)
	snap := read(t, c)
	if snap.Type != "snapshot" || snap.Seq != 1 || len(snap.Breakers) != 1 {
		t.Fatalf("first message: %s", snap.raw)
	}
	var st admin.Status
	if err := json.Unmarshal(snap.raw, &st); err != nil || st.Breakers[0].State != core.ForcedOpen {
		t.Fatalf("snapshot body: %v %s", err, snap.raw)
	}
	if got := keys(t, snap.raw); !strings.Contains(strings.Join(got, ","), "alerts,breakers,bulkheads,generated_at,health,seq,slos,type,user_bulkheads") {
		t.Fatalf("snapshot keys %v", got)
	}

	want := []struct{ from, to core.State }{
		{core.ForcedOpen, core.Closed}, {core.Closed, core.Disabled}, {core.Disabled, core.Closed},
		{core.Closed, core.ForcedOpen}, {core.ForcedOpen, core.HalfOpen},
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

	// Other kinds carry their own type.
	f.m.Bus().Publish(events.SLOBurn{Type: events.TypeSLOBurn, Endpoint: "api-service", Burning: true})
	f.m.Bus().Publish(alert.Alert{ID: "a1", Severity: alert.Warning, Message: "hello"})
	if m := read(t, c); m.Type != "slo_burn" || m.Seq != 7 || strings.Count(string(m.raw), `"type"`) != 1 {
		t.Fatalf("slo burn: %s", m.raw)
	}
	if m := read(t, c); m.Type != "alert" || m.Seq != 8 {
		t.Fatalf("alert: %s", m.raw)
	}
}

func TestFeedPeriodicSnapshots(t *testing.T) {
	f := newFixture(t, admin.Config{SnapshotInterval: 20 * time.Millisecond})
	f.breaker(t, "api")
	c := dial(t, f.srv, nil)
	for range 3 {
		if m := read(t, c); m.Type != admin.TypeSnapshot || len(m.Breakers) != 1 {
			t.Fatalf("%s", m.raw)
		}
	}
	// Receivers registered in code get events only.
	rx, err := f.h.Register(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	time.Sleep(60 * time.Millisecond)
	if len(rx.C()) != 0 {
		t.Fatalf("a receiver got snapshots: %s", <-rx.C())
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
	if n := f.h.Notifier().Subscribers(); n != 0 {
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
	waitFor(t, "slots to free", func() bool { return f.h.Notifier().Subscribers() == 0 })
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
	bad := admin.TokenSubprotocolPrefix + base64.RawURLEncoding.EncodeToString([]byte("nope-nope-nope-nope"))
	if code := dialStatus(t, f.srv, &websocket.DialOptions{Subprotocols: []string{admin.Subprotocol, bad}}); code != http.StatusUnauthorized {
		t.Fatalf("wrong subprotocol token: %d", code)
	}
	if code := dialStatus(t, f.srv, &websocket.DialOptions{Subprotocols: []string{admin.Subprotocol, admin.TokenSubprotocolPrefix + "%%%"}}); code != http.StatusUnauthorized {
		t.Fatalf("undecodable subprotocol token: %d", code)
	}

	c := dial(t, f.srv, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + testToken}}})
	read(t, c)
	// The browser way: the token rides in a subprotocol, which is never echoed.
	tok := admin.TokenSubprotocolPrefix + base64.RawURLEncoding.EncodeToString([]byte(testToken))
	c2 := dial(t, f.srv, &websocket.DialOptions{Subprotocols: []string{admin.Subprotocol, tok}})
	if c2.Subprotocol() != admin.Subprotocol {
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
	waitFor(t, "pings", func() bool { return pings.Load() >= 3 })
	if ctx.Err() != nil {
		t.Fatal("connection ended")
	}
}

func TestFeedCloseSaysGoingAway(t *testing.T) {
	f := newFixture(t, admin.Config{})
	c := dial(t, f.srv, nil)
	read(t, c)
	f.h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _, err := c.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("read after Close: %v", err)
	}
	if code := dialStatus(t, f.srv, nil); code != http.StatusServiceUnavailable {
		t.Fatalf("dial after Close: %d", code)
	}
	if r := do(t, "GET", f.srv.URL+"/status", "", ""); r.code != 200 {
		t.Fatalf("status after Close: %d", r.code)
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
	h, err := admin.New(admin.Config{Manager: m, SubscriberBuffer: 2, PingInterval: time.Hour, SnapshotInterval: time.Hour,
		Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = smallBuffers{srv.Listener}
	srv.Start()
	t.Cleanup(func() { srv.Close(); h.Close() })

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

	b, _ := m.Breaker("api")
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
	for i := 0; h.Notifier().Subscribers() == 2; i++ {
		if i == 5000 {
			t.Fatal("the slow client was never disconnected")
		}
		step(i)
	}
	// The fast client keeps receiving after the slow one is gone.
	for i := range 10 {
		step(i)
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

func TestSlowReceiverIsDropped(t *testing.T) {
	// A receiver that lets its buffer fill is dropped, never waited for.
	f := newFixture(t, admin.Config{SubscriberBuffer: 1})
	rx, err := f.h.Register(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	b := f.breaker(t, "api")
	b.ForceOpen("x")
	b.Reset()
	b.ForceOpen("y")
	waitFor(t, "the receiver to be dropped", func() bool { return rx.Err() != nil })
	if !errors.Is(rx.Err(), admin.ErrSlowSubscriber) {
		t.Fatalf("err %v", rx.Err())
	}
	n := 0
	for range rx.C() {
		n++
	}
	if n != 1 {
		t.Fatalf("drained %d, want the 1 buffered", n)
	}
}

func TestRegisterEndsWithItsContext(t *testing.T) {
	f := newFixture(t, admin.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	rx, err := f.h.Register(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.breaker(t, "api").ForceOpen("x")
	if msg := <-rx.C(); !strings.Contains(string(msg), `"new_state":"ForcedOpen"`) {
		t.Fatalf("%s", msg)
	}
	cancel()
	for range rx.C() {
	}
	if !errors.Is(rx.Err(), context.Canceled) {
		t.Fatalf("err %v", rx.Err())
	}
	rx.Close() // after the end: harmless
	if _, err := f.h.Register(ctx); err == nil {
		t.Fatal("registered with a done context")
	}
	rx2, _ := f.h.Register(context.Background())
	f.h.Close()
	for range rx2.C() {
	}
	if !errors.Is(rx2.Err(), admin.ErrNotifierClosed) {
		t.Fatalf("after Close: %v", rx2.Err())
	}
	if _, err := f.h.Register(context.Background()); !errors.Is(err, admin.ErrNotifierClosed) {
		t.Fatalf("register after Close: %v", err)
	}
}

func TestMonitorBreaker(t *testing.T) {
	f := newFixture(t, admin.Config{Token: testToken})
	lone, err := core.NewBreaker("payments-gateway", core.Config{}, core.WithClock(f.clock))
	if err != nil {
		t.Fatal(err)
	}
	rx, err := f.h.Register(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	stop := f.h.MonitorBreaker(lone)
	f.h.MonitorBreaker(lone) // twice is once
	lone.Trip("upstream 5xx")
	msg := <-rx.C()
	var sc events.StateChange
	if err := json.Unmarshal(msg, &sc); err != nil || sc.Endpoint != "payments-gateway" || sc.NewState != core.Open {
		t.Fatalf("%s", msg)
	}
	// It is in the status and can be controlled.
	var st admin.Status
	do(t, "GET", f.srv.URL+"/status", testToken, "").json(t, &st)
	if len(st.Breakers) != 1 || st.Breakers[0].Endpoint != "payments-gateway" || st.Breakers[0].State != core.Open {
		t.Fatalf("status: %+v", st.Breakers)
	}
	if r := do(t, "POST", f.srv.URL+"/breakers/payments-gateway", testToken, `{"action":"reset"}`); r.code != 200 || lone.State() != core.Closed {
		t.Fatalf("control: %d %s", r.code, r.body)
	}
	<-rx.C() // the reset
	stop()
	stop()
	lone.Trip("again")
	f.breaker(t, "other").Trip("on the bus")
	if msg := <-rx.C(); !strings.Contains(string(msg), `"endpoint":"other"`) {
		t.Fatalf("an unmonitored breaker's event arrived: %s", msg)
	}
	if r := do(t, "GET", f.srv.URL+"/status/payments-gateway", testToken, ""); r.code != 404 {
		t.Fatalf("after stop: %d", r.code)
	}
}

func TestStandaloneNotifier(t *testing.T) {
	// The seed's ResilienceWebSocketNotifier::new() + monitor + register.
	n, err := admin.NewNotifier(admin.NotifierConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	b, _ := core.NewBreaker("api-service", core.Config{}, core.WithClock(core.NewFakeClock(seedTime)))
	n.MonitorBreaker(b)
	rx, err := n.Register(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	b.Trip("Failure threshold exceeded")
	want := `{"endpoint":"api-service","old_state":"Closed","new_state":"Open","timestamp":"2025-10-08T12:00:00Z","reason":"Failure threshold exceeded","type":"state_change","seq":1}`
	if got := string(<-rx.C()); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	evs, seq := n.Recent(0)
	if seq != 1 || len(evs) != 1 {
		t.Fatalf("recent: %d %d", seq, len(evs))
	}
	n.Close()
	n.Close()
}

func TestConcurrentFeedClients(t *testing.T) {
	f := newFixture(t, admin.Config{SubscriberBuffer: 256, SnapshotInterval: 10 * time.Millisecond})
	b := f.breaker(t, "api")
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				c, _, err := websocket.Dial(ctx, wsURL(f.srv, "/ws"), nil)
				if err == nil {
					_, _, _ = c.Read(ctx)
					c.CloseNow()
				}
				cancel()
			}
		}()
	}
	for range 200 {
		b.ForceOpen("churn")
		b.Reset()
	}
	wg.Wait()
	waitFor(t, "every client to leave", func() bool { return f.h.Notifier().Subscribers() == 0 })
}
