package nethttp

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/bulwark-go/bulwark/core"
)

// statusWriter records the status a handler sends while passing everything
// through, including flushing, hijacking and ReadFrom, so streaming and
// WebSocket routes work behind the middleware. Unwrap lets
// http.ResponseController reach the writer below.
//
// With a deadline (timed), the handler's response and the deadline's answer
// race for the writer: whichever starts first has it. Once the deadline has
// answered, the handler's writes fail with http.ErrHandlerTimeout.
type statusWriter struct {
	w        http.ResponseWriter
	status   int
	hijacked int64 // Clock.Nanotime when the connection was taken over, if it was
	clock    core.Clock

	timed bool
	gate  atomic.Int32 // gateOpen, then gateStarted, gateTimedOut or gateClosed
	// answering is held while the deadline's answer is written, so that
	// the request does not finish under it.
	answering sync.Mutex
}

// The states of statusWriter.gate.
const (
	gateOpen     int32 = iota // nothing written yet
	gateStarted               // the handler's response has begun
	gateTimedOut              // the deadline answered instead
	gateClosed                // the request finished before its deadline answered
)

// begin reports whether the handler may write: always without a deadline,
// and with one, unless the deadline has answered.
func (sw *statusWriter) begin() bool {
	if !sw.timed {
		return true
	}
	switch sw.gate.Load() {
	case gateStarted:
		return true
	case gateOpen:
		return sw.gate.CompareAndSwap(gateOpen, gateStarted) || sw.gate.Load() == gateStarted
	}
	return false
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
	if !sw.begin() {
		return
	}
	// 1xx responses are informational; the final status comes later.
	if sw.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		sw.status = code
	}
	sw.w.WriteHeader(code)
}

func (sw *statusWriter) Write(p []byte) (int, error) {
	if !sw.begin() {
		return 0, http.ErrHandlerTimeout
	}
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	return sw.w.Write(p)
}

func (sw *statusWriter) Flush() {
	if !sw.begin() {
		return
	}
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	_ = http.NewResponseController(sw.w).Flush()
}

func (sw *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if !sw.begin() {
		return nil, nil, http.ErrHandlerTimeout
	}
	c, rw, err := http.NewResponseController(sw.w).Hijack()
	if err == nil {
		sw.status = http.StatusSwitchingProtocols
		sw.hijacked = sw.clock.Nanotime()
	}
	return c, rw, err
}

func (sw *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	if !sw.begin() {
		return 0, http.ErrHandlerTimeout
	}
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
