// Package check validates configuration structs for every Bulwark
// package the same way: a zero field takes its default, any other value
// outside its range is reported, and every bad field is reported, not
// only the first.
//
// The error values are made by the function given to New, so that this
// package needs nothing from the packages that use it (core makes them
// *core.ConfigError).
package check

import (
	"errors"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"
)

// Checker collects the problems of one configuration. Sub gives a Checker
// for a nested struct that reports into the same list.
type Checker struct {
	prefix string
	newErr func(field string, value any, rule string) error
	errs   *[]error
}

// New returns a Checker whose field names start with prefix (such as
// "core.BreakerConfig.") and whose errors newErr makes.
func New(prefix string, newErr func(field string, value any, rule string) error) *Checker {
	return &Checker{prefix: prefix, newErr: newErr, errs: new([]error)}
}

// Sub returns a Checker for the nested struct at field (such as "Breaker"
// or "Endpoints[GET /x]"), reporting into c's list.
func (c *Checker) Sub(field string) *Checker {
	return &Checker{prefix: c.prefix + field + ".", newErr: c.newErr, errs: c.errs}
}

// Path returns the full name of field.
func (c *Checker) Path(field string) string { return c.prefix + field }

// Fail reports field, whose value is v, as breaking rule.
func (c *Checker) Fail(field string, v any, rule string) {
	*c.errs = append(*c.errs, c.newErr(c.prefix+field, v, rule))
}

// Add reports err, a problem found by other means, as it is.
func (c *Checker) Add(err error) {
	if err != nil {
		*c.errs = append(*c.errs, err)
	}
}

// Err joins every problem reported, or returns nil.
func (c *Checker) Err() error { return errors.Join(*c.errs...) }

// Failed reports whether any problem was reported.
func (c *Checker) Failed() bool { return len(*c.errs) > 0 }

// Int replaces a zero *v with def and reports any other value outside
// [lo, hi].
func (c *Checker) Int(field string, v *int, def, lo, hi int) {
	if *v == 0 {
		*v = def
	} else if *v < lo || *v > hi {
		c.Fail(field, *v, Range(lo, hi, def))
	}
}

// Float replaces a zero *v with def and reports any other value outside
// [lo, hi] (NaN included).
func (c *Checker) Float(field string, v *float64, def, lo, hi float64) {
	if *v == 0 {
		*v = def
	} else if !(*v >= lo && *v <= hi) {
		c.Fail(field, *v, Range(lo, hi, def))
	}
}

// Percent replaces a zero *v with def and reports any other value that is
// not above 0 and at most 100.
func (c *Checker) Percent(field string, v *float64, def float64) {
	if *v == 0 {
		*v = def
	} else if !(*v > 0 && *v <= 100) {
		c.Fail(field, *v, fmt.Sprintf("must be above 0 and at most 100 (0 means the default, %v)", def))
	}
}

// Duration replaces a zero *v with def and reports any other value outside
// [lo, hi].
func (c *Checker) Duration(field string, v *time.Duration, def, lo, hi time.Duration) {
	if *v == 0 {
		*v = def
	} else if *v < lo || *v > hi {
		c.Fail(field, *v, Range(lo, hi, def))
	}
}

// Printable reports whether s is valid UTF-8 without control characters:
// text that reaches logs, headers and pages must not forge lines.
func Printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// Range is the rule text of a field that takes def when zero and allows
// lo to hi otherwise.
func Range(lo, hi, def any) string {
	return fmt.Sprintf("must be between %v and %v (0 means the default, %v)", lo, hi, def)
}
