package health

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Checker is a custom health check (the seed's CustomHealthChecker): a nil
// error means healthy. Check should honour ctx, which carries the probe's
// timeout.
type Checker interface {
	Check(ctx context.Context) error
}

// CheckerFunc adapts a function to a Checker.
type CheckerFunc func(ctx context.Context) error

// Check calls f(ctx).
func (f CheckerFunc) Check(ctx context.Context) error { return f(ctx) }

// CustomProbe runs a Checker as a Probe.
//
// A Checker that ignores ctx is still bounded: Check returns when the
// timeout passes and lets the checker finish on its own goroutine.
type CustomProbe struct {
	name    string
	checker Checker
	timeout time.Duration
}

// NewCustomProbe returns a probe named name that runs c. Options:
// WithTimeout, WithName.
func NewCustomProbe(name string, c Checker, opts ...Option) (*CustomProbe, error) {
	if name == "" {
		return nil, errors.New("health: custom probe name is empty")
	}
	if c == nil {
		return nil, errors.New("health: custom probe checker is nil")
	}
	o, err := buildOptions(kindCustom, opts)
	if err != nil {
		return nil, err
	}
	if o.name != "" {
		name = o.name
	}
	return &CustomProbe{name: name, checker: c, timeout: o.timeout}, nil
}

// Name returns the probe's name.
func (p *CustomProbe) Name() string { return p.name }

// Check runs the checker once. A panicking checker fails the check rather
// than the program.
func (p *CustomProbe) Check(ctx context.Context) Result {
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
			return ctx.Err()
		}
	})
}
