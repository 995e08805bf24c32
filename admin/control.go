package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/bulwark-go/bulwark/internal/check"
)

// The control actions of POST …/breakers/{endpoint}.
const (
	actionForceOpen = "force_open" // hold open, rejecting every call, until reset or disable
	actionReset     = "reset"      // core.Breaker.Reset: Closed, window and consecutive counts cleared
	actionDisable   = "disable"    // let every call through and never trip, until reset
)

const actionList = "force_open, reset, disable"

// controlRequest is the body of POST …/breakers/{endpoint}, decoded
// strictly: exactly one JSON object with no other fields, at most
// maxBodyBytes.
type controlRequest struct {
	// Action is one of force_open, reset and disable. Required.
	Action string `json:"action"`
	// Reason is recorded in the audit log and, for force_open, in the
	// breaker's state reason. Optional; at most maxReasonLen bytes of
	// printable text.
	Reason string `json:"reason"`
}

// controlResponse is the answer to an applied control action.
type controlResponse struct {
	Endpoint string `json:"endpoint"`
	Action   string `json:"action"`
	Reason   string `json:"reason"`
	// Scope is "cluster" when the action went through Config.Cluster,
	// "local" when it was applied to this instance's breaker.
	Scope string `json:"scope"`
	// Breaker is the breaker's status after the action.
	Breaker breakerStatus `json:"breaker"`
}

// authorizeChange lets a change through only when a token is configured
// and the request carries it; what names the routes for the hint.
func (h *Handler) authorizeChange(w http.ResponseWriter, r *http.Request, what string) bool {
	if h.cfg.Token == "" {
		writeError(w, http.StatusForbidden, what+" is disabled: set admin.Config.Token (at least 16 bytes) to enable it, then send it as Authorization: Bearer <token>")
		return false
	}
	return h.authorize(w, r, bearer(r))
}

func (h *Handler) serveControl(w http.ResponseWriter, r *http.Request, escaped string) {
	if !h.authorizeChange(w, r, "control") {
		return
	}
	name, ok := endpointName(w, escaped)
	if !ok {
		return
	}
	b, ok := h.breaker(name)
	if !ok {
		writeError(w, http.StatusNotFound, "unknown endpoint "+strconv.Quote(name)+": no breaker has that name")
		return
	}
	req, code, err := decodeControl(w, r)
	if err != nil {
		writeError(w, code, err.Error())
		return
	}
	reason := req.Reason
	if reason == "" {
		reason = "admin API"
	}
	scope := "local"
	if c := h.cfg.Cluster; c != nil {
		scope = "cluster"
		switch req.Action {
		case actionForceOpen:
			err = c.ForceOpen(r.Context(), name, reason)
		case actionReset:
			err = c.Reset(r.Context(), name)
		case actionDisable:
			err = c.Disable(r.Context(), name)
		}
		if err != nil {
			// A store may still have applied it here alone; say where the
			// local breaker stands so the operator knows.
			st := b.State()
			h.log.Warn("admin: cluster control action failed", "endpoint", name, "action", req.Action, "reason", reason,
				"remote", r.RemoteAddr, "local_state", st, "err", err)
			writeError(w, http.StatusBadGateway, fmt.Sprintf("the cluster controller failed to apply %s: %v (this instance's breaker is %s)", req.Action, err, st))
			return
		}
	} else {
		switch req.Action {
		case actionForceOpen:
			b.ForceOpen(reason)
		case actionReset:
			b.Reset()
		case actionDisable:
			b.Disable()
		}
	}
	h.log.Info("admin: control action", "endpoint", name, "action", req.Action, "reason", reason, "scope", scope, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, controlResponse{
		Endpoint: name, Action: req.Action, Reason: reason, Scope: scope, Breaker: breakerStatusOf(b),
	})
}

// decodeControl reads and checks a control body. The error names the
// problem; code is the status to answer with.
func decodeControl(w http.ResponseWriter, r *http.Request) (controlRequest, int, error) {
	var req controlRequest
	if err := checkContentType(r); err != nil {
		return req, http.StatusUnsupportedMediaType, err
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, bodyErrorCode(err), bodyError(err, controlExample)
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); err != io.EOF {
		if code := bodyErrorCode(err); code == http.StatusRequestEntityTooLarge {
			return req, code, bodyError(err, controlExample)
		}
		return req, http.StatusBadRequest, errors.New(`body must hold exactly one JSON object, but more follows it`)
	}
	switch req.Action {
	case actionForceOpen, actionReset, actionDisable:
	case "":
		return req, http.StatusBadRequest, errors.New(`"action" is required: one of ` + actionList)
	default:
		return req, http.StatusBadRequest, fmt.Errorf(`"action" %s is not one of %s`, quoteShort(req.Action), actionList)
	}
	if len(req.Reason) > maxReasonLen {
		return req, http.StatusBadRequest, fmt.Errorf(`"reason" is %d bytes, more than the %d allowed`, len(req.Reason), maxReasonLen)
	}
	if !check.Printable(req.Reason) {
		return req, http.StatusBadRequest, errors.New(`"reason" must be printable text without control characters`)
	}
	return req, 0, nil
}

const controlExample = `{"action":"force_open|close|reset|disable","reason":"..."}`

// checkContentType accepts a body sent as JSON or without a type.
func checkContentType(r *http.Request) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return fmt.Errorf("Content-Type must be application/json, got %s", quoteShort(ct))
		}
	}
	return nil
}

func bodyErrorCode(err error) int {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

// bodyError turns a decoding error into a message about the body; want
// shows what the body should look like.
func bodyError(err error, want string) error {
	var (
		tooBig *http.MaxBytesError
		syn    *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &tooBig):
		return fmt.Errorf("body is larger than %d bytes", tooBig.Limit)
	case errors.Is(err, io.EOF):
		return errors.New("body is empty: want " + want)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("body is not valid JSON: it ends too early")
	case errors.As(err, &syn):
		return fmt.Errorf("body is not valid JSON at byte %d: %s", syn.Offset, strings.TrimPrefix(syn.Error(), "json: "))
	case errors.As(err, &typ):
		if typ.Field == "" {
			return fmt.Errorf("body must be a JSON object, not %s", typ.Value)
		}
		return fmt.Errorf("%q must be a %s, not %s", typ.Field, typ.Type, typ.Value)
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Errorf(`unknown field %s: the body takes only "action" and "reason"`, f)
	}
	return fmt.Errorf("body is not valid: %s", strings.TrimPrefix(err.Error(), "json: "))
}

// quoteShort quotes s for an error message, cut to a sane length.
func quoteShort(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strconv.Quote(s)
}
