package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Probe checks one dependency. Check never panics and always returns a
// Result; its Err says why a failed check failed. A Probe is safe for
// concurrent use.
//
// NewHTTPProbe, NewTCPProbe, NewWebSocketProbe, NewCustomProbe and
// grpcprobe.New make the probes Bulwark ships.
type Probe interface {
	// Check runs one check, bounded by ctx and the probe's own timeout.
	Check(ctx context.Context) Result
	// Name identifies the probe in results and reasons, for example
	// "grpc://db:9090" or "tcp://cache:6379".
	Name() string
}

// Result is the outcome of one check. Its JSON form is
// {"probe","ok","latency_ms","error","time"}, with the error as its message
// (left out when the check passed) and the time left out when zero.
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
	Time      time.Time `json:"time,omitzero"`
}

// MarshalJSON encodes r in the form Result describes.
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
