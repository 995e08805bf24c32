package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
)

// Handler is the admin http.Handler: JSON status, control, runtime
// settings, the WebSocket feed and the dashboard page. Make it with New
// and stop it with Close.
type Handler struct {
	cfg   Config
	clock core.Clock
	hub   *hub
	// history and cluster are fed by the hub's goroutine.
	history *history
	cluster cluster
	token   [sha256.Size]byte // hash of cfg.Token, compared in constant time
	log     *slog.Logger
}

// New returns a Handler for cfg, or an error naming every bad field, each
// a *core.ConfigError. It starts the feed's goroutine; Close stops it.
func New(cfg Config) (*Handler, error) {
	c, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	h := &Handler{cfg: c, clock: c.Manager.Clock(), log: c.Logger}
	if c.Token != "" {
		h.token = sha256.Sum256([]byte(c.Token))
	}
	h.history = newHistory(c.Manager, c.SnapshotInterval)
	h.hub = newHub(c.Manager.Bus(), c, h.snapshotMessage)
	h.hub.onTick = h.history.sample
	h.hub.onEvent = func(e events.Event) bool {
		h.history.observe(e)
		return h.cluster.observe(e)
	}
	h.hub.start()
	return h, nil
}

// Close stops the feed: every WebSocket client is told the server is going
// away and disconnected (cut off if it takes more than a second), every
// Receiver ends with ErrClosed, and breakers given to MonitorBreaker are
// let go. It returns when the feed's goroutine and connections have ended,
// or with an error wrapping ctx.Err() when ctx ends first. Status, control
// and settings keep working; the feed answers 503. A second Close returns
// nil at once.
func (h *Handler) Close(ctx context.Context) error { return h.hub.close(ctx) }

// Register subscribes to every later event of the feed, in code rather
// than over a WebSocket: each message is an event's JSON object with its
// "type" and "seq", as the feed sends it (snapshots are not sent). The
// Receiver's channel holds up to Config.SubscriberBuffer messages; read it
// promptly, or the receiver is dropped with ErrSlowSubscriber. It ends
// when ctx ends, on its Close, or on the Handler's; Err then says why.
// Receivers count toward Config.MaxSubscribers: past it Register fails
// with ErrTooManySubscribers, and after Close with ErrClosed.
func (h *Handler) Register(ctx context.Context) (*Receiver, error) { return h.hub.register(ctx) }

// MonitorBreaker follows the transitions of a breaker that does not
// publish on the Manager's bus, one made with core.NewBreaker: the feed
// and Receivers get its events, the status lists it and control actions
// reach it. (A breaker on the bus would be reported twice.) Monitoring the
// same breaker again does nothing; a nil breaker, or a call after Close,
// is ignored. The returned function stops following it.
func (h *Handler) MonitorBreaker(b *core.Breaker) (stop func()) { return h.hub.monitor(b) }

// ServeHTTP routes on the path below the mount point (see the package
// documentation for the routes).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Cache-Control", "no-store")
	rest, ok := h.route(r)
	if !ok {
		h.notFound(w)
		return
	}
	switch {
	case rest == "":
		if !h.allow(w, r, http.MethodGet) {
			return
		}
		if p := requestPath(r); !strings.HasSuffix(p, "/") {
			// The page's relative URLs need the trailing slash. The
			// Location is relative too: behind StripPrefix the handler
			// does not know the full path (http.Redirect would resolve it
			// against the stripped one).
			w.Header().Set("Location", path.Base(p)+"/")
			w.WriteHeader(http.StatusMovedPermanently)
			return
		}
		servePage(w, r)
	case strings.HasPrefix(rest, "ui/"):
		if h.allow(w, r, http.MethodGet) {
			serveAsset(w, r, rest)
		}
	case rest == "status":
		if h.allow(w, r, http.MethodGet) && h.authorizeRead(w, r) {
			writeJSON(w, http.StatusOK, h.status(h.hub.lastSeq(), h.tokenOK(bearer(r))))
		}
	case rest == "history":
		if h.allow(w, r, http.MethodGet) && h.authorizeRead(w, r) {
			h.serveHistory(w, r)
		}
	case strings.HasPrefix(rest, "status/"):
		if h.allow(w, r, http.MethodGet) && h.authorizeRead(w, r) {
			h.serveEndpoint(w, r, rest[len("status/"):])
		}
	case rest == "events":
		if h.allow(w, r, http.MethodGet) && h.authorizeRead(w, r) {
			h.serveEvents(w, r)
		}
	case rest == "ws":
		if h.allow(w, r, http.MethodGet) {
			h.serveFeed(w, r)
		}
	case strings.HasPrefix(rest, "breakers/"):
		if h.allow(w, r, http.MethodPost) {
			h.serveControl(w, r, rest[len("breakers/"):])
		}
	case strings.HasPrefix(rest, "config/"):
		if h.allow(w, r, http.MethodPut, http.MethodDelete) {
			h.serveSettings(w, r, rest[len("config/"):])
		}
	case rest == "faults" || strings.HasPrefix(rest, "faults/"):
		h.serveFaultRoutes(w, r, rest)
	default:
		h.notFound(w)
	}
}

// route returns the escaped path below the mount point, without its
// leading slash. The escaped form keeps an endpoint's "%2F" apart from the
// path's own slashes.
func (h *Handler) route(r *http.Request) (string, bool) {
	p := r.URL.EscapedPath()
	if h.cfg.Prefix != "" {
		rest, ok := strings.CutPrefix(p, h.cfg.Prefix)
		if !ok || (rest != "" && rest[0] != '/') {
			return "", false
		}
		p = rest
	}
	return strings.TrimPrefix(p, "/"), true
}

// requestPath is the path the client asked for, before any prefix was
// stripped.
func requestPath(r *http.Request) string {
	if u, err := url.ParseRequestURI(r.RequestURI); err == nil && u.Path != "" {
		return u.Path
	}
	return r.URL.Path
}

// allow accepts one of methods (and HEAD for GET) or answers 405.
func (h *Handler) allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	allowed := make([]string, 0, len(methods)+1)
	for _, m := range methods {
		if r.Method == m || (m == http.MethodGet && r.Method == http.MethodHead) {
			return true
		}
		allowed = append(allowed, m)
		if m == http.MethodGet {
			allowed = append(allowed, http.MethodHead)
		}
	}
	list := strings.Join(allowed, ", ")
	w.Header().Set("Allow", list)
	writeError(w, http.StatusMethodNotAllowed, quoteShort(r.Method)+" is not allowed here; use "+list)
	return false
}

func (h *Handler) notFound(w http.ResponseWriter) {
	writeError(w, http.StatusNotFound, "no such admin route; see GET status, status/{endpoint}, history, events, ws, faults, POST breakers/{endpoint}, PUT or DELETE config/{endpoint}, POST faults and DELETE faults/{id}")
}

// endpointName decodes and validates an endpoint name taken from the path.
func endpointName(w http.ResponseWriter, escaped string) (string, bool) {
	name, err := url.PathUnescape(escaped)
	if err != nil {
		writeError(w, http.StatusBadRequest, "endpoint name is not validly URL-escaped: "+err.Error())
		return "", false
	}
	if err := core.ValidateEndpoint(name); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return "", false
	}
	return name, true
}

func (h *Handler) serveEndpoint(w http.ResponseWriter, r *http.Request, escaped string) {
	name, ok := endpointName(w, escaped)
	if !ok {
		return
	}
	es, ok := h.endpointStatus(name, h.hub.lastSeq(), h.tokenOK(bearer(r)))
	if !ok {
		writeError(w, http.StatusNotFound, "unknown endpoint "+strconv.Quote(name))
		return
	}
	writeJSON(w, http.StatusOK, es)
}

// eventsResponse is the body of GET …/events.
type eventsResponse struct {
	// Seq is the latest event's sequence number.
	Seq uint64 `json:"seq"`
	// Events are the recent feed messages with a seq above the since
	// parameter (default 0), oldest first, at most Config.EventHistory.
	Events []json.RawMessage `json:"events"`
}

func (h *Handler) serveEvents(w http.ResponseWriter, r *http.Request) {
	var since uint64
	if s := r.URL.Query().Get("since"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "since must be a sequence number (a non-negative integer), got "+strconv.Quote(s))
			return
		}
		since = v
	}
	evs, seq := h.hub.recent(since)
	writeJSON(w, http.StatusOK, eventsResponse{Seq: seq, Events: evs})
}

// breakers returns the Manager's breakers and the monitored ones, sorted
// by endpoint; a Manager's breaker wins a name clash.
func (h *Handler) breakers() []*core.Breaker {
	var bs []*core.Breaker
	for _, e := range h.cfg.Manager.Endpoints() {
		bs = append(bs, e.Breaker())
	}
	extra := h.hub.monitoredBreakers()
	if len(extra) == 0 {
		return bs
	}
	for _, b := range extra {
		if _, ok := h.cfg.Manager.Lookup(b.Name()); !ok {
			bs = append(bs, b)
		}
	}
	slices.SortFunc(bs, func(a, b *core.Breaker) int { return strings.Compare(a.Name(), b.Name()) })
	return bs
}

// breaker finds an endpoint's breaker, in the Manager or among the
// monitored ones. It never creates one.
func (h *Handler) breaker(name string) (*core.Breaker, bool) {
	if e, ok := h.cfg.Manager.Lookup(name); ok {
		return e.Breaker(), true
	}
	for _, b := range h.hub.monitoredBreakers() {
		if b.Name() == name {
			return b, true
		}
	}
	return nil, false
}

// authorizeRead lets a read through when no token is configured, when
// PublicRead is set, or when the request carries the token.
func (h *Handler) authorizeRead(w http.ResponseWriter, r *http.Request) bool {
	if h.cfg.Token == "" || h.cfg.PublicRead {
		return true
	}
	return h.authorize(w, r, bearer(r))
}

// authorize checks a presented token, answering 401 when it is wrong.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request, presented string) bool {
	if h.tokenOK(presented) {
		return true
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="bulwark admin"`)
	msg := "missing token: send Authorization: Bearer <token>"
	if presented != "" {
		msg = "wrong token"
	}
	writeError(w, http.StatusUnauthorized, msg)
	return false
}

// tokenOK compares hashes in constant time, so neither the token's bytes
// nor its length leak through timing.
func (h *Handler) tokenOK(presented string) bool {
	if h.cfg.Token == "" || presented == "" {
		return false
	}
	got := sha256.Sum256([]byte(presented))
	return subtle.ConstantTimeCompare(got[:], h.token[:]) == 1
}

// bearer returns the token of an "Authorization: Bearer" header.
func bearer(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// errorResponse is the body of every error answer.
type errorResponse struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorResponse{Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b, _ = json.Marshal(errorResponse{Error: "encoding the response failed: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// snapshotMessage is the feed's snapshot message as of seq.
func (h *Handler) snapshotMessage(seq uint64) []byte {
	st := h.status(seq, false)
	st.Type = typeSnapshot
	st.Sample = h.history.latest()
	b, err := json.Marshal(st)
	if err != nil {
		h.log.Error("admin: encoding a feed snapshot failed", "err", err)
		return nil
	}
	return b
}
