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
)

// Handler is the admin http.Handler: JSON status, control, the WebSocket
// feed and the dashboard page. Make it with New and stop it with Close.
type Handler struct {
	cfg      Config
	clock    core.Clock
	notifier *Notifier
	token    [sha256.Size]byte // hash of cfg.Token, compared in constant time
	log      *slog.Logger
}

// New returns a Handler for cfg, or an error naming every field out of
// range. It starts the feed's hub goroutine; Close stops it.
func New(cfg Config) (*Handler, error) {
	c, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	h := &Handler{cfg: c, clock: c.Manager.Clock(), log: c.Logger}
	if c.Token != "" {
		h.token = sha256.Sum256([]byte(c.Token))
	}
	h.notifier = newNotifier(c.Manager.Bus(), c)
	h.notifier.snapshot = h.snapshotMessage
	h.notifier.snapshotEvery = c.SnapshotInterval
	h.notifier.start()
	return h, nil
}

// Close stops the feed: every WebSocket client is disconnected (going
// away) and every Receiver ends. Status and control keep working; the feed
// answers 503. Calling Close again does nothing.
func (h *Handler) Close() error {
	h.notifier.Close()
	return nil
}

// Notifier returns the hub behind the feed, for Register and
// MonitorBreaker.
func (h *Handler) Notifier() *Notifier { return h.notifier }

// Register subscribes to the feed's events; see Notifier.Register.
func (h *Handler) Register(ctx context.Context) (*Receiver, error) { return h.notifier.Register(ctx) }

// MonitorBreaker follows a breaker that is not in the Manager; see
// Notifier.MonitorBreaker.
func (h *Handler) MonitorBreaker(b *core.Breaker) (stop func()) { return h.notifier.MonitorBreaker(b) }

// ServeHTTP routes on the path below the mount point:
//
//	GET  /                    the dashboard page
//	GET  /status              Status of everything
//	GET  /status/{endpoint}   EndpointStatus (endpoint URL-escaped)
//	GET  /events[?since=N]    recent feed messages
//	GET  /ws                  the WebSocket feed
//	POST /breakers/{endpoint} a control action
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
			writeJSON(w, http.StatusOK, h.status(h.notifier.Seq()))
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

// allow accepts method (and HEAD for GET) or answers 405.
func (h *Handler) allow(w http.ResponseWriter, r *http.Request, method string) bool {
	if r.Method == method || (method == http.MethodGet && r.Method == http.MethodHead) {
		return true
	}
	allowed := method
	if method == http.MethodGet {
		allowed += ", HEAD"
	}
	w.Header().Set("Allow", allowed)
	writeError(w, http.StatusMethodNotAllowed, r.Method+" is not allowed here; use "+allowed)
	return false
}

func (h *Handler) notFound(w http.ResponseWriter) {
	writeError(w, http.StatusNotFound, "no such admin route; see GET status, status/{endpoint}, events, ws and POST breakers/{endpoint}")
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
	es, ok := h.endpointStatus(name, h.notifier.Seq())
	if !ok {
		writeError(w, http.StatusNotFound, "unknown endpoint "+strconv.Quote(name))
		return
	}
	writeJSON(w, http.StatusOK, es)
}

// EventsResponse is the body of GET …/events.
type EventsResponse struct {
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
	evs, seq := h.notifier.Recent(since)
	writeJSON(w, http.StatusOK, EventsResponse{Seq: seq, Events: evs})
}

// breakers returns the Manager's breakers and the monitored ones, sorted
// by endpoint; a Manager's breaker wins a name clash.
func (h *Handler) breakers() []*core.Breaker {
	var bs []*core.Breaker
	for _, e := range h.cfg.Manager.Endpoints() {
		bs = append(bs, e.Breaker())
	}
	extra := h.notifier.monitoredBreakers()
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
	for _, b := range h.notifier.monitoredBreakers() {
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

// ErrorResponse is the body of every error answer.
type ErrorResponse struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, ErrorResponse{Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b, _ = json.Marshal(ErrorResponse{Error: "encoding the response failed: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// snapshotMessage is the feed's snapshot message as of seq.
func (h *Handler) snapshotMessage(seq uint64) []byte {
	st := h.status(seq)
	st.Type = TypeSnapshot
	b, err := json.Marshal(st)
	if err != nil {
		h.log.Error("admin: encoding a feed snapshot failed", "err", err)
		return nil
	}
	return b
}
