package admin

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// subprotocol is the WebSocket subprotocol the feed speaks. Browsers that
// offer any subprotocol (to carry the token) must offer this one too.
const subprotocol = "bulwark.v1"

// tokenSubprotocolPrefix starts the subprotocol that carries the token
// from a browser, which cannot set an Authorization header on a WebSocket:
// "bulwark.token." followed by the token in unpadded base64url. The server
// never echoes it; it selects subprotocol.
const tokenSubprotocolPrefix = "bulwark.token."

var errClientGone = errors.New("admin: feed client disconnected")

// serveFeed upgrades to the WebSocket feed: a snapshot, then every event,
// then periodic snapshots, with pings in between.
func (h *Handler) serveFeed(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Token != "" && !h.cfg.PublicRead {
		tok := bearer(r)
		if tok == "" {
			tok = protocolToken(r)
		}
		if !h.authorize(w, r, tok) {
			return
		}
	}
	if !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "websocket") {
		w.Header().Set("Upgrade", "websocket")
		writeError(w, http.StatusUpgradeRequired, "this route is a WebSocket feed: connect with a WebSocket client")
		return
	}
	// Checked before a subscriber slot is taken, and again by Accept.
	if err := checkOrigin(r, h.cfg.OriginPatterns); err != nil {
		writeError(w, http.StatusForbidden, err.Error())
		return
	}
	// Writes use their own context, which the hub cancels to cut off a
	// subscriber stuck in a write to a peer that stopped reading.
	wctx, abort := context.WithCancel(context.Background())
	defer abort()
	s, seq, err := h.hub.subscribe(true, abort)
	if err != nil {
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "the feed is unavailable: "+err.Error())
		return
	}
	defer h.hub.feedDone(s, errClientGone)

	// Close needs to cut a connection stuck in its closing handshake,
	// which the websocket package's CloseNow does not: keep the network
	// connection.
	rw := w
	if hj, ok := findHijacker(w); ok {
		rw = &hijackWatcher{ResponseWriter: w, hj: hj, hijacked: func(nc net.Conn) {
			h.hub.accepted(s, func() { _ = nc.Close() })
		}}
	}
	c, err := websocket.Accept(rw, r, &websocket.AcceptOptions{
		Subprotocols:   []string{subprotocol},
		OriginPatterns: h.cfg.OriginPatterns,
	})
	if err != nil {
		return // Accept has answered
	}
	defer c.CloseNow()
	// The client sends nothing; reading answers its pings and its close,
	// and a data message from it ends the feed.
	closed := c.CloseRead(context.Background())

	err = h.feed(wctx, closed, c, s, seq)
	h.log.Debug("admin: feed client left", "remote", r.RemoteAddr, "err", err)
}

// feed writes the snapshot and then the subscriber's messages until the
// client leaves, is dropped or stops answering pings.
func (h *Handler) feed(wctx, closed context.Context, c *websocket.Conn, s *subscriber, seq uint64) error {
	snap := h.snapshotMessage(seq)
	if snap == nil {
		c.Close(websocket.StatusInternalError, "could not build the snapshot")
		return errors.New("no snapshot")
	}
	if err := h.write(wctx, c, snap); err != nil {
		return err
	}
	ping := time.NewTicker(h.cfg.PingInterval)
	defer ping.Stop()
	for {
		select {
		case <-closed.Done():
			return context.Cause(closed)
		case <-s.gone:
			return h.closeDropped(c, s)
		case msg, ok := <-s.ch:
			if !ok || isClosed(s.gone) {
				// Dropped: close with the reason rather than fail a write.
				return h.closeDropped(c, s)
			}
			if err := h.write(wctx, c, msg); err != nil {
				return err
			}
			ping.Reset(h.cfg.PingInterval) // a write is proof enough of life
		case <-ping.C:
			ctx, cancel := context.WithTimeout(wctx, h.cfg.WriteTimeout)
			err := c.Ping(ctx)
			cancel()
			if err != nil {
				return err
			}
		}
	}
}

func (h *Handler) write(ctx context.Context, c *websocket.Conn, msg []byte) error {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.WriteTimeout)
	defer cancel()
	return c.Write(ctx, websocket.MessageText, msg)
}

// closeDropped closes a connection the hub dropped, saying why.
func (h *Handler) closeDropped(c *websocket.Conn, s *subscriber) error {
	err := h.hub.why(s)
	if errors.Is(err, ErrSlowSubscriber) {
		c.Close(websocket.StatusPolicyViolation, "too slow: the feed does not wait")
	} else {
		c.Close(websocket.StatusGoingAway, "server shutting down")
	}
	return err
}

// hijackWatcher passes the network connection to hijacked when the
// WebSocket handshake takes it over.
type hijackWatcher struct {
	http.ResponseWriter
	hj       http.Hijacker
	hijacked func(net.Conn)
}

// WriteHeaderNow passes on the call the websocket package makes for gin,
// whose writer sends the status line only then.
func (w *hijackWatcher) WriteHeaderNow() {
	if g, ok := w.ResponseWriter.(interface{ WriteHeaderNow() }); ok {
		g.WriteHeaderNow()
	}
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (w *hijackWatcher) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *hijackWatcher) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := w.hj.Hijack()
	if err == nil {
		w.hijacked(nc)
	}
	return nc, brw, err
}

// findHijacker finds the http.Hijacker behind w, through the wrappers
// that say what they wrap (as http.ResponseController does).
func findHijacker(w http.ResponseWriter) (http.Hijacker, bool) {
	for {
		switch t := w.(type) {
		case http.Hijacker:
			return t, true
		case interface{ Unwrap() http.ResponseWriter }:
			w = t.Unwrap()
		default:
			return nil, false
		}
	}
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// protocolToken returns the token a browser put in Sec-WebSocket-Protocol.
func protocolToken(r *http.Request) string {
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for p := range strings.SplitSeq(v, ",") {
			if enc, ok := strings.CutPrefix(strings.TrimSpace(p), tokenSubprotocolPrefix); ok {
				b, err := base64.RawURLEncoding.DecodeString(enc)
				if err != nil {
					return "\x00invalid" // presented, but not a token we can match
				}
				return string(b)
			}
		}
	}
	return ""
}

func headerHasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// checkOrigin allows requests without an Origin (non-browser clients),
// from the request's own host, or from a host matching a pattern; the same
// rule as websocket.Accept, checked early to answer in JSON.
func checkOrigin(r *http.Request, patterns []string) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return errors.New("origin " + quoteShort(origin) + " is not a URL with a host")
	}
	if strings.EqualFold(u.Host, r.Host) {
		return nil
	}
	for _, p := range patterns {
		target := u.Host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + u.Host
		}
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(target)); ok {
			return nil
		}
	}
	return errors.New("origin " + quoteShort(u.Host) + " may not open the feed of " + quoteShort(r.Host) + ": add it to admin.Config.OriginPatterns")
}
