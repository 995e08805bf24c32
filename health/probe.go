package health

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"google.golang.org/grpc"
)

// DefaultTimeout bounds a probe's check when WithTimeout is not given.
const DefaultTimeout = 5 * time.Second

// Probe checks one dependency. Check never panics and always returns a
// Result; its Err says why a failed check failed. A Probe is safe for
// concurrent use.
type Probe interface {
	// Check runs one check, bounded by ctx and the probe's own timeout.
	Check(ctx context.Context) Result
	// Name identifies the probe in results and reasons, for example
	// "grpc://db:9090" or "tcp://cache:6379".
	Name() string
}

// Result is the outcome of one check.
type Result struct {
	// Probe is the name of the probe that ran.
	Probe string
	// OK reports whether the dependency is healthy.
	OK bool
	// Latency is how long the check took.
	Latency time.Duration
	// Err is why the check failed (nil when OK).
	Err error
	// Time is when the check started.
	Time time.Time
}

type resultJSON struct {
	Probe     string    `json:"probe"`
	OK        bool      `json:"ok"`
	LatencyMS float64   `json:"latency_ms"`
	Error     string    `json:"error,omitempty"`
	Time      time.Time `json:"time"`
}

// MarshalJSON encodes r as
// {"probe":…,"ok":…,"latency_ms":…,"error":…,"time":…}, with the error as
// its message.
func (r Result) MarshalJSON() ([]byte, error) {
	j := resultJSON{Probe: r.Probe, OK: r.OK, LatencyMS: float64(r.Latency) / float64(time.Millisecond), Time: r.Time}
	if r.Err != nil {
		j.Error = r.Err.Error()
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes the form MarshalJSON writes; the error comes back as
// a plain error with the same message.
func (r *Result) UnmarshalJSON(b []byte) error {
	var j resultJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*r = Result{Probe: j.Probe, OK: j.OK, Latency: time.Duration(j.LatencyMS * float64(time.Millisecond)), Time: j.Time}
	if j.Error != "" {
		r.Err = errors.New(j.Error)
	}
	return nil
}

// run times check under the probe's timeout and fills a Result.
func run(ctx context.Context, name string, timeout time.Duration, check func(context.Context) error) Result {
	start := time.Now()
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := check(ctx)
	if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		// Say that the deadline cut the check short, not just "EOF".
		err = fmt.Errorf("%w (%w)", err, ctx.Err())
	}
	return Result{Probe: name, OK: err == nil, Latency: time.Since(start), Err: err, Time: start}
}

// Option configures a probe. Each option says which probes it applies to;
// giving a probe an option that does not apply to it is an error at
// construction.
type Option func(*options)

type kind uint8

const (
	kindHTTP kind = 1 << iota
	kindTCP
	kindGRPC
	kindWebSocket
	kindCustom
	kindAll = kindHTTP | kindTCP | kindGRPC | kindWebSocket | kindCustom
)

var kindNames = map[kind]string{kindHTTP: "HTTP", kindTCP: "TCP", kindGRPC: "gRPC", kindWebSocket: "WebSocket", kindCustom: "custom"}

type options struct {
	errs []error

	name      string
	timeout   time.Duration
	client    *http.Client
	method    string
	header    http.Header
	statusLo  int
	statusHi  int
	tls       *tls.Config
	service   string
	dialOpts  []grpc.DialOption
	applies   []kind // for each option given, the probes it fits
	optionFor []string
}

func (o *options) use(name string, k kind) {
	o.applies = append(o.applies, k)
	o.optionFor = append(o.optionFor, name)
}

func (o *options) fail(format string, args ...any) {
	o.errs = append(o.errs, fmt.Errorf("health: "+format, args...))
}

// buildOptions applies opts for a probe of kind k and validates them.
func buildOptions(k kind, opts []Option) (*options, error) {
	o := &options{timeout: DefaultTimeout, method: http.MethodGet, statusLo: 200, statusHi: 399}
	for _, opt := range opts {
		if opt != nil {
			opt(o)
		}
	}
	for i, a := range o.applies {
		if a&k == 0 {
			o.fail("%s does not apply to a %s probe", o.optionFor[i], kindNames[k])
		}
	}
	return o, errors.Join(o.errs...)
}

// WithTimeout bounds each check (DefaultTimeout otherwise). All probes.
func WithTimeout(d time.Duration) Option {
	return func(o *options) {
		o.use("WithTimeout", kindAll)
		if d <= 0 {
			o.fail("WithTimeout(%v): want > 0", d)
			return
		}
		o.timeout = d
	}
}

// WithName replaces the probe's default name. All probes.
func WithName(name string) Option {
	return func(o *options) {
		o.use("WithName", kindAll)
		if name == "" {
			o.fail("WithName: empty name")
			return
		}
		o.name = name
	}
}

// WithHTTPClient sends the HTTP or WebSocket handshake request with c. A
// WebSocket probe needs a client whose transport returns writable bodies
// (http.Transport does). HTTP and WebSocket probes.
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) {
		o.use("WithHTTPClient", kindHTTP|kindWebSocket)
		if c == nil {
			o.fail("WithHTTPClient: nil client")
			return
		}
		o.client = c
	}
}

// WithMethod sets the HTTP method (GET by default). HTTP probes.
func WithMethod(method string) Option {
	return func(o *options) {
		o.use("WithMethod", kindHTTP)
		if method == "" {
			o.fail("WithMethod: empty method")
			return
		}
		o.method = method
	}
}

// WithHeader adds a request header. HTTP and WebSocket probes.
func WithHeader(key, value string) Option {
	return func(o *options) {
		o.use("WithHeader", kindHTTP|kindWebSocket)
		if key == "" {
			o.fail("WithHeader: empty key")
			return
		}
		if o.header == nil {
			o.header = make(http.Header)
		}
		o.header.Add(key, value)
	}
}

// WithStatusRange sets the HTTP status codes that pass, lo to hi inclusive
// (200 to 399 by default). HTTP probes.
func WithStatusRange(lo, hi int) Option {
	return func(o *options) {
		o.use("WithStatusRange", kindHTTP)
		if lo < 100 || hi > 599 || lo > hi {
			o.fail("WithStatusRange(%d, %d): want 100 <= lo <= hi <= 599", lo, hi)
			return
		}
		o.statusLo, o.statusHi = lo, hi
	}
}

// WithTLS makes a TCP probe complete a TLS handshake after connecting, a
// gRPC probe connect over TLS, and a WebSocket probe use cfg for wss URLs.
// A nil config means the defaults (system roots, server name from the
// address). TCP, gRPC and WebSocket probes.
func WithTLS(cfg *tls.Config) Option {
	return func(o *options) {
		o.use("WithTLS", kindTCP|kindGRPC|kindWebSocket)
		if cfg == nil {
			cfg = &tls.Config{}
		}
		o.tls = cfg
	}
}

// WithService sets the service name sent in the gRPC health request (""
// by default: the server as a whole). gRPC probes.
func WithService(name string) Option {
	return func(o *options) {
		o.use("WithService", kindGRPC)
		o.service = name
	}
}

// WithDialOptions adds gRPC dial options, after the transport credentials
// the probe chooses (a credentials option given here wins). gRPC probes.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) {
		o.use("WithDialOptions", kindGRPC)
		o.dialOpts = append(o.dialOpts, opts...)
	}
}
