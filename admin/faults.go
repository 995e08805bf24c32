package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/internal/filecfg"
)

// faultsResponse is the body of GET …/faults. The durations are empty
// while fault injection is off.
type faultsResponse struct {
	Enabled         bool        `json:"enabled"`
	DefaultDuration string      `json:"default_duration"`
	MaxDuration     string      `json:"max_duration"`
	Faults          []faultJSON `json:"faults"`
}

// faultJSON is one running experiment. HeaderValue and User, the filters,
// are shown only to a request that carries the token; others see
// hiddenFilter when they are set.
type faultJSON struct {
	ID               string    `json:"id"`
	Endpoint         string    `json:"endpoint"`
	Percent          float64   `json:"percent"`
	Latency          string    `json:"latency"`
	LatencyMax       string    `json:"latency_max"`
	Status           int       `json:"status"`
	Abort            bool      `json:"abort"`
	Header           string    `json:"header"`
	HeaderValue      string    `json:"header_value"`
	User             string    `json:"user"`
	Ends             time.Time `json:"ends"`
	RemainingSeconds int64     `json:"remaining_seconds"`
	Reason           string    `json:"reason"`
	Origin           string    `json:"origin"`
	Injected         int64     `json:"injected"`
}

const hiddenFilter = "(set)"

// faultJSONOf shows f as of now; reveal shows its filters' values.
func faultJSONOf(f core.Fault, now time.Time, reveal bool) faultJSON {
	hide := func(s string) string {
		if reveal || s == "" {
			return s
		}
		return hiddenFilter
	}
	return faultJSON{
		ID: f.ID, Endpoint: f.Endpoint, Percent: f.Percent,
		Latency: durationText(f.Latency), LatencyMax: durationText(f.LatencyMax),
		Status: f.Status, Abort: f.Abort,
		Header: f.Header, HeaderValue: hide(f.HeaderValue), User: hide(f.User),
		Ends: f.Ends, RemainingSeconds: int64(math.Ceil(max(f.Ends.Sub(now), 0).Seconds())),
		Reason: f.Reason, Origin: f.Origin, Injected: f.Injected,
	}
}

// durationText is d as Go writes it, or empty for none.
func durationText(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// faultsOf returns the running experiments shown as of now, those of
// endpoint alone unless it is empty; never nil.
func (h *Handler) faultsOf(endpoint string, reveal bool) []faultJSON {
	out := []faultJSON{}
	now := h.clock.Now()
	for _, f := range h.cfg.Manager.Faults() {
		if endpoint == "" || f.Endpoint == endpoint {
			out = append(out, faultJSONOf(f, now, reveal))
		}
	}
	return out
}

// faultRequest is the body of POST …/faults, decoded strictly: durations
// are strings such as "20s", empty for none.
type faultRequest struct {
	Endpoint    string  `json:"endpoint"`
	Percent     float64 `json:"percent"`
	Status      int     `json:"status"`
	Duration    string  `json:"duration"`
	Latency     string  `json:"latency"`
	LatencyMax  string  `json:"latency_max"`
	Abort       bool    `json:"abort"`
	Header      string  `json:"header"`
	HeaderValue string  `json:"header_value"`
	User        string  `json:"user"`
	Reason      string  `json:"reason"`
}

const faultExample = `{"endpoint":"GET /x","percent":50,"status":500,"duration":"20s"}`

// serveFaults serves GET …/faults (read access) and POST …/faults (the
// token), which starts an experiment.
func (h *Handler) serveFaults(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		if !h.authorizeRead(w, r) {
			return
		}
		res := faultsResponse{Faults: []faultJSON{}}
		if l, ok := h.cfg.Manager.FaultLimits(); ok {
			res.Enabled, res.DefaultDuration, res.MaxDuration = true, l.DefaultDuration.String(), l.MaxDuration.String()
			res.Faults = h.faultsOf("", h.tokenOK(bearer(r)))
		}
		writeJSON(w, http.StatusOK, res)
		return
	}
	if !h.faultsOn(w) || !h.authorizeChange(w, r, "fault injection") {
		return
	}
	f, code, err := decodeFault(w, r)
	if err == nil {
		f, err = h.cfg.Manager.StartFault(f)
		code = faultErrorCode(err)
	}
	if err != nil {
		h.log.Info("admin: fault experiment refused", "remote", r.RemoteAddr, "err", err)
		var ps []settingsProblem
		if errors.Is(err, core.ErrInvalidConfig) {
			collectProblems(err, &ps)
			for i := range ps {
				ps[i].Field = faultField(ps[i].Field)
			}
		}
		writeJSON(w, code, settingsError{Error: err.Error(), Problems: nonNil(ps)})
		return
	}
	h.log.Info("admin: fault experiment started", "id", f.ID, "endpoint", f.Endpoint, "percent", f.Percent,
		"latency", f.Latency, "latency_max", f.LatencyMax, "status", f.Status, "abort", f.Abort,
		"header", f.Header, "user_filter", f.User != "", "ends", f.Ends, "reason", f.Reason, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusCreated, faultJSONOf(f, h.clock.Now(), true))
}

// serveFault serves DELETE …/faults/{id}, which ends an experiment early.
func (h *Handler) serveFault(w http.ResponseWriter, r *http.Request, escaped string) {
	if !h.faultsOn(w) || !h.authorizeChange(w, r, "fault injection") {
		return
	}
	id, err := url.PathUnescape(escaped)
	if err != nil {
		writeError(w, http.StatusBadRequest, "experiment ID is not validly URL-escaped: "+err.Error())
		return
	}
	f, ok := h.cfg.Manager.StopFault(id)
	if !ok {
		writeError(w, http.StatusNotFound, "no fault experiment "+quoteShort(id)+" is running")
		return
	}
	h.log.Info("admin: fault experiment stopped", "id", f.ID, "endpoint", f.Endpoint, "injected", f.Injected, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, faultJSONOf(f, h.clock.Now(), true))
}

// faultsOn answers 404 while the Manager's fault injection is off.
func (h *Handler) faultsOn(w http.ResponseWriter) bool {
	if _, ok := h.cfg.Manager.FaultLimits(); ok {
		return true
	}
	writeError(w, http.StatusNotFound, "fault injection is off: set core.ManagerConfig.Faults (the configuration file's faults section) to turn it on")
	return false
}

// faultErrorCode is the status a failed StartFault answers with.
func faultErrorCode(err error) int {
	var ce *core.ConfigError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ce) && ce.Field == "core.ManagerConfig.Faults.MaxFaults":
		return http.StatusConflict // nothing wrong with the body: too many run
	case errors.Is(err, core.ErrInvalidConfig):
		return http.StatusBadRequest
	case errors.Is(err, core.ErrTooManyEndpoints):
		return http.StatusConflict
	case errors.Is(err, core.ErrFaultsDisabled):
		return http.StatusNotFound
	}
	return http.StatusInternalServerError
}

// faultField names a core.Fault field as the body does ("header_value");
// other fields keep their full name.
func faultField(field string) string {
	if f, ok := strings.CutPrefix(field, "core.Fault."); ok {
		return filecfg.SnakeCase(f)
	}
	return field
}

// decodeFault reads a POST …/faults body: exactly one JSON object of
// faultRequest's keys, at most maxBodyBytes. A duration that does not
// parse is a *core.ConfigError named by its key; code is the status to
// answer with.
func decodeFault(w http.ResponseWriter, r *http.Request) (core.Fault, int, error) {
	if err := checkContentType(r); err != nil {
		return core.Fault{}, http.StatusUnsupportedMediaType, err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		return core.Fault{}, bodyErrorCode(err), bodyError(err, faultExample)
	}
	return parseFault(body)
}

// parseFault decodes a fault body (see decodeFault).
func parseFault(body []byte) (core.Fault, int, error) {
	var req faultRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return core.Fault{}, http.StatusBadRequest, fmt.Errorf("unknown field %s: want %s, with latency, latency_max, abort, header, header_value, user and reason as needed", f, faultExample)
		}
		return core.Fault{}, http.StatusBadRequest, bodyError(err, faultExample)
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); err != io.EOF {
		return core.Fault{}, http.StatusBadRequest, errors.New("body must hold exactly one JSON object, but more follows it")
	}
	if bytes.Equal(bytes.TrimSpace(body), []byte("null")) {
		return core.Fault{}, http.StatusBadRequest, errors.New("body must be a JSON object such as " + faultExample + ", not null")
	}
	f := core.Fault{
		Endpoint: req.Endpoint, Percent: req.Percent, Status: req.Status, Abort: req.Abort,
		Header: req.Header, HeaderValue: req.HeaderValue, User: req.User, Reason: req.Reason,
	}
	var errs []error
	for _, d := range []struct {
		key string
		s   string
		to  *time.Duration
	}{{"duration", req.Duration, &f.Duration}, {"latency", req.Latency, &f.Latency}, {"latency_max", req.LatencyMax, &f.LatencyMax}} {
		if d.s == "" {
			continue
		}
		v, err := time.ParseDuration(d.s)
		if err != nil {
			errs = append(errs, &core.ConfigError{Field: d.key, Value: d.s, Rule: `must be a duration such as "20s" or "250ms"`})
			continue
		}
		*d.to = v
	}
	if f.Reason == "" {
		f.Reason = "admin API"
	}
	if err := errors.Join(errs...); err != nil {
		return core.Fault{}, http.StatusBadRequest, err
	}
	return f, 0, nil
}

// serveFaultRoutes serves …/faults and …/faults/{id}.
func (h *Handler) serveFaultRoutes(w http.ResponseWriter, r *http.Request, rest string) {
	if id, ok := strings.CutPrefix(rest, "faults/"); ok {
		if h.allow(w, r, http.MethodDelete) {
			h.serveFault(w, r, id)
		}
	} else if h.allow(w, r, http.MethodGet, http.MethodPost) {
		h.serveFaults(w, r)
	}
}
