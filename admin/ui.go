package admin

import (
	"embed"
	"net/http"
	"strconv"
)

// ui holds the dashboard: plain HTML, CSS and JavaScript, no build step and
// no external URL.
//
//go:embed ui/index.html ui/app.css ui/app.js
var ui embed.FS

// The page loads only its own script and style and talks only to its own
// origin (the feed included: CSP's 'self' covers ws: and wss: on the same
// host).
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

var assetTypes = map[string]string{
	"ui/app.css": "text/css; charset=utf-8",
	"ui/app.js":  "text/javascript; charset=utf-8",
}

func servePage(w http.ResponseWriter, r *http.Request) {
	serveFile(w, r, "ui/index.html", "text/html; charset=utf-8")
}

func serveAsset(w http.ResponseWriter, r *http.Request, name string) {
	ct, ok := assetTypes[name]
	if !ok {
		writeError(w, http.StatusNotFound, "no such dashboard file")
		return
	}
	serveFile(w, r, name, ct)
}

func serveFile(w http.ResponseWriter, r *http.Request, name, contentType string) {
	b, err := ui.ReadFile(name)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "dashboard file missing from the build")
		return
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
}
