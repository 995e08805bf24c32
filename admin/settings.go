package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/bulwark-go/bulwark/core"
)

// settingsResponse is the answer to an applied PUT or DELETE
// …/config/{endpoint}: the endpoint's settings now in effect.
type settingsResponse struct {
	Endpoint       string          `json:"endpoint"`
	Settings       json.RawMessage `json:"settings"`
	SettingsSource string          `json:"settings_source"`
}

// settingsError is the body of a refused settings change: Error holds
// every message, Problems each problem apart, with the field it names
// when it names one.
type settingsError struct {
	Error    string            `json:"error"`
	Problems []settingsProblem `json:"problems"`
}

type settingsProblem struct {
	Field   string `json:"field,omitempty"`
	Rule    string `json:"rule,omitempty"`
	Message string `json:"message"`
}

const settingsExample = `a JSON object shaped like the configuration file's section for the endpoint, such as {"breaker":{"failure_threshold":5}}`

// serveSettings serves PUT …/config/{endpoint} (change the settings with
// the body, a patch) and DELETE (back to the file's settings).
func (h *Handler) serveSettings(w http.ResponseWriter, r *http.Request, escaped string) {
	if h.cfg.Settings == nil {
		writeError(w, http.StatusNotFound, "runtime settings are not available: admin.Config.Settings is not set")
		return
	}
	if !h.authorizeChange(w, r, "changing settings") {
		return
	}
	name, ok := endpointName(w, escaped)
	if !ok {
		return
	}
	var (
		err    error
		action = "clear"
		patch  []byte
	)
	if r.Method == http.MethodPut {
		var code int
		patch, code, err = decodeSettings(w, r)
		if err != nil {
			writeError(w, code, err.Error())
			return
		}
		action = "override"
		err = h.cfg.Settings.Reconfigure(r.Context(), name, patch)
	} else {
		err = h.cfg.Settings.ResetConfig(r.Context(), name)
	}
	switch {
	case errors.Is(err, core.ErrInvalidConfig):
		h.log.Info("admin: settings change refused", "endpoint", name, "action", action, "remote", r.RemoteAddr, "err", err)
		var ps []settingsProblem
		collectProblems(err, &ps)
		writeJSON(w, http.StatusBadRequest, settingsError{Error: err.Error(), Problems: ps})
		return
	case err != nil:
		h.log.Warn("admin: settings change failed", "endpoint", name, "action", action, "remote", r.RemoteAddr, "err", err)
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "the settings could not be changed: "+err.Error())
		return
	}
	h.log.Info("admin: settings changed", "endpoint", name, "action", action, "patch", logText(patch), "remote", r.RemoteAddr)
	res := settingsResponse{Endpoint: name}
	res.Settings, res.SettingsSource = h.settingsOf(name)
	writeJSON(w, http.StatusOK, res)
}

// settingsOf returns an endpoint's settings and their source, or null
// settings when what Config.Settings gives is not valid JSON.
func (h *Handler) settingsOf(name string) (json.RawMessage, string) {
	s, src := h.cfg.Settings.EndpointSettings(name)
	if !json.Valid(s) {
		h.log.Error("admin: the settings of an endpoint are not valid JSON", "endpoint", name, "bytes", len(s))
		return json.RawMessage("null"), src
	}
	return s, src
}

// decodeSettings reads a settings patch: exactly one JSON object, at most
// maxSettingsBytes. Its fields are the Settings' to check.
func decodeSettings(w http.ResponseWriter, r *http.Request) ([]byte, int, error) {
	if err := checkContentType(r); err != nil {
		return nil, http.StatusUnsupportedMediaType, err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSettingsBytes))
	if err != nil {
		return nil, bodyErrorCode(err), bodyError(err, settingsExample)
	}
	body = bytes.TrimSpace(body)
	dec := json.NewDecoder(bytes.NewReader(body))
	var obj map[string]json.RawMessage
	if err := dec.Decode(&obj); err != nil {
		return nil, http.StatusBadRequest, bodyError(err, settingsExample)
	}
	if obj == nil {
		return nil, http.StatusBadRequest, errors.New("body must be " + settingsExample + ", not null")
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); err != io.EOF {
		return nil, http.StatusBadRequest, errors.New("body must hold exactly one JSON object, but more follows it")
	}
	return body, 0, nil
}

// collectProblems lists every problem in err: each *core.ConfigError with
// its field, and each other message that holds none.
func collectProblems(err error, out *[]settingsProblem) {
	var ce *core.ConfigError
	switch e := err.(type) {
	case *core.ConfigError:
		*out = append(*out, settingsProblem{Field: e.Field, Rule: e.Rule, Message: e.Error()})
		return
	case interface{ Unwrap() []error }:
		for _, x := range e.Unwrap() {
			if x != nil {
				collectProblems(x, out)
			}
		}
		return
	}
	if u := errors.Unwrap(err); u != nil && errors.As(u, &ce) {
		collectProblems(u, out)
		return
	}
	*out = append(*out, settingsProblem{Message: err.Error()})
}

// logText is b for a log line, cut to a sane length.
func logText(b []byte) string {
	const limit = 1024
	if len(b) > limit {
		return string(b[:limit]) + "…"
	}
	return string(b)
}
