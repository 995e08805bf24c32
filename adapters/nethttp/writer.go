package nethttp

import (
	"bufio"
	"io"
	"net"
	"net/http"

	"github.com/bulwark-go/bulwark/core"
)

// statusWriter records the status a handler sends while passing everything
// through, including flushing, hijacking and ReadFrom, so streaming and
// WebSocket routes work behind the middleware. Unwrap lets
// http.ResponseController reach the writer below.
type statusWriter struct {
	w        http.ResponseWriter
	status   int
	hijacked int64 // Clock.Nanotime when the connection was taken over, if it was
	clock    core.Clock
}

// Status returns the status sent, or 200 when the handler wrote nothing
// (net/http sends 200 then).
func (sw *statusWriter) Status() int {
	if sw.status == 0 {
		return http.StatusOK
	}
	return sw.status
}

func (sw *statusWriter) Header() http.Header { return sw.w.Header() }

func (sw *statusWriter) WriteHeader(code int) {
	// 1xx responses are informational; the final status comes later.
	if sw.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		sw.status = code
	}
	sw.w.WriteHeader(code)
}

func (sw *statusWriter) Write(p []byte) (int, error) {
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	return sw.w.Write(p)
}

func (sw *statusWriter) Flush() {
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	_ = http.NewResponseController(sw.w).Flush()
}

func (sw *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(sw.w).Hijack()
	if err == nil {
		sw.status = http.StatusSwitchingProtocols
		sw.hijacked = sw.clock.Nanotime()
	}
	return c, rw, err
}

func (sw *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	if rf, ok := sw.w.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{sw.w}, r)
}

// Unwrap returns the ResponseWriter below, for http.ResponseController.
func (sw *statusWriter) Unwrap() http.ResponseWriter { return sw.w }

// writerOnly hides ReadFrom so io.Copy does not loop back into it.
type writerOnly struct{ io.Writer }
