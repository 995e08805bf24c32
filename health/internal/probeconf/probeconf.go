// Package probeconf holds the configuration rules that every health probe
// shares, so that health and health/grpcprobe check them the same way.
package probeconf

import (
	"fmt"
	"reflect"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/internal/check"
)

// The range of every probe's Timeout field; zero takes defaultTimeout.
const (
	defaultTimeout = 5 * time.Second
	minTimeout     = time.Millisecond
	maxTimeout     = time.Hour
)

// New returns a Checker for the config struct named prefix (such as
// "health.HTTPProbeConfig.") whose problems are *core.ConfigError values.
func New(prefix string) *check.Checker { return check.New(prefix, newErr) }

func newErr(field string, value any, rule string) error {
	return &core.ConfigError{Field: field, Value: value, Rule: rule}
}

// Timeout fills a zero probe timeout with the default (5s) and reports
// one outside 1ms to 1h.
func Timeout(c *check.Checker, d *time.Duration) {
	c.Duration("Timeout", d, defaultTimeout, minTimeout, maxTimeout)
}

// IsNil reports whether v is nil or an interface holding a nil pointer,
// func, map, slice, channel or interface, which would panic when used.
func IsNil(v any) bool {
	if v == nil {
		return true
	}
	switch r := reflect.ValueOf(v); r.Kind() {
	case reflect.Pointer, reflect.Func, reflect.Map, reflect.Slice, reflect.Chan, reflect.Interface, reflect.UnsafePointer:
		return r.IsNil()
	}
	return false
}

// Required reports field when v is nil or a typed nil (see IsNil).
func Required(c *check.Checker, field string, v any) {
	if IsNil(v) {
		c.Fail(field, nilValue(v), "must not be nil")
	}
}

// nilValue shows which nil it was: "<nil>" or the typed nil's type.
func nilValue(v any) string {
	if v == nil {
		return "<nil>"
	}
	return fmt.Sprintf("(%T)(nil)", v)
}
