package health

import (
	"context"
	"fmt"
	"time"

	"github.com/bulwark-go/bulwark/health/internal/probeconf"
)

// Checker is a health check you write: a nil error means healthy. Check
// should honour ctx, which carries the probe's timeout.
type Checker interface {
	Check(ctx context.Context) error
}

// CheckerFunc adapts a function to a Checker.
type CheckerFunc func(ctx context.Context) error

// Check calls f(ctx).
func (f CheckerFunc) Check(ctx context.Context) error { return f(ctx) }

// CustomProbeConfig describes a probe that runs a Checker.
type CustomProbeConfig struct {
	// Name names the probe in results and reasons. Required.
	Name string
	// Checker is the check to run. Required.
	Checker Checker
	// Timeout bounds each check. Default 5s; 1ms to 1h.
	Timeout time.Duration
}

// customProbe runs a Checker as a Probe.
type customProbe struct {
	name    string
	checker Checker
	timeout time.Duration
}

// NewCustomProbe returns a probe that runs cfg.Checker. A checker that
// ignores its context is still bounded: Check returns when the timeout
// passes and lets the checker finish on its own goroutine. A panicking
// checker fails the check rather than the program.
func NewCustomProbe(cfg CustomProbeConfig) (Probe, error) {
	c := probeconf.New("health.CustomProbeConfig.")
	if cfg.Name == "" {
		c.Fail("Name", `""`, "must not be empty")
	}
	probeconf.Required(c, "Checker", cfg.Checker)
	probeconf.Timeout(c, &cfg.Timeout)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return &customProbe{name: cfg.Name, checker: cfg.Checker, timeout: cfg.Timeout}, nil
}

func (p *customProbe) Name() string { return p.name }

func (p *customProbe) Check(ctx context.Context) Result {
	return run(ctx, p.name, p.timeout, func(ctx context.Context) error {
		done := make(chan error, 1)
		go func() {
			defer func() {
				if v := recover(); v != nil {
					done <- fmt.Errorf("checker panicked: %v", v)
				}
			}()
			done <- p.checker.Check(ctx)
		}()
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
			select {
			case err := <-done: // it finished too: its error says more
				return err
			default:
				return ctx.Err()
			}
		}
	})
}
