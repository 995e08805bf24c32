package main

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"path"
	"strconv"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/bulwark-go/bulwark/core"
)

// api holds the demo service's handlers.
type api struct {
	quotes   *http.Client // through Bulwark's Transport
	upstream *upstream
	token    string

	mu    sync.Mutex
	cache map[string][]byte // last good quote per symbol, the fallback
}

func (a *api) routes(r chi.Router) {
	r.Get("/api/quotes/{symbol}", a.quote)
	r.Get("/api/users/{id}", a.user)
	r.Post("/api/orders", a.order)
	r.Get("/api/reports/{kind}", a.report)
}

// quote calls the upstream through Bulwark's transport. When the call is
// refused (the upstream's breaker is open) or fails, the transport's
// fallback (staleQuote) serves the last good quote, marked stale, instead:
// the inbound route stays healthy.
func (a *api) quote(w http.ResponseWriter, r *http.Request) {
	symbol := chi.URLParam(r, "symbol")
	if len(symbol) == 0 || len(symbol) > 12 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "symbol must be 1 to 12 characters"})
		return
	}
	req, _ := http.NewRequestWithContext(r.Context(), "GET", a.upstream.url+"/quotes/"+symbol, nil)
	resp, err := a.quotes.Do(req)
	if err != nil {
		var rejected *core.RejectedError
		if errors.As(err, &rejected) {
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int(rejected.RetryAfter().Seconds()+0.5))))
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "quote service unavailable"})
			return
		}
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": "quote service failed: " + err.Error()})
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil || resp.StatusCode != http.StatusOK {
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": "quote service answered " + resp.Status})
		return
	}
	if stale := resp.Header.Get("X-Fallback"); stale != "" {
		w.Header().Set("X-Fallback", stale)
	} else {
		a.mu.Lock()
		a.cache[symbol] = body
		a.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// staleQuote is the quote transport's fallback: for a refused or failed
// call it answers with the last good quote of the symbol, if there is one,
// and keeps the error otherwise.
func (a *api) staleQuote(req *http.Request, resp *http.Response, err error) (*http.Response, error) {
	symbol := path.Base(req.URL.Path)
	a.mu.Lock()
	cached, ok := a.cache[symbol]
	a.mu.Unlock()
	if !ok {
		if resp != nil {
			return resp, nil
		}
		return nil, err
	}
	if resp != nil {
		resp.Body.Close()
	}
	h := http.Header{"Content-Type": {"application/json"}, "X-Fallback": {"stale-quote"}}
	return &http.Response{StatusCode: http.StatusOK, Status: "200 OK", Header: h, Body: io.NopCloser(bytes.NewReader(cached)), Request: req}, nil
}

func (a *api) user(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(chi.URLParam(r, "id"))
	if err != nil || id < 0 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "id must be a non-negative integer"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "name": "user " + strconv.Itoa(id)})
}

// order fails now and then, so the SLO has something to count.
func (a *api) order(w http.ResponseWriter, r *http.Request) {
	var in struct {
		SKU string `json:"sku"`
		Qty int    `json:"qty"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
	if err := dec.Decode(&in); err != nil || in.SKU == "" || in.Qty < 1 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `want {"sku":"...","qty":n} with qty >= 1`})
		return
	}
	if rand.IntN(100) == 0 {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "inventory lock timeout"})
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"order": rand.Uint32(), "sku": in.SKU, "qty": in.Qty})
}

// report takes a while, so the bulkheads have something to hold.
func (a *api) report(w http.ResponseWriter, r *http.Request) {
	select {
	case <-time.After(time.Duration(30+rand.IntN(90)) * time.Millisecond):
	case <-r.Context().Done():
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"report": chi.URLParam(r, "kind"), "rows": rand.IntN(500)})
}

// setUpstreamMode switches the in-process upstream: POST
// /demo/upstream?mode=healthy|slow|failing|flap with the admin token.
func (a *api) setUpstreamMode(w http.ResponseWriter, r *http.Request) {
	got := r.Header.Get("Authorization")
	if subtle.ConstantTimeCompare([]byte(got), []byte("Bearer "+a.token)) != 1 {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "send the admin token as a Bearer token"})
		return
	}
	mode := r.URL.Query().Get("mode")
	if !validMode(mode) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "mode must be healthy, slow, failing or flap"})
		return
	}
	a.upstream.setMode(mode)
	writeJSON(w, http.StatusOK, map[string]string{"mode": mode})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
