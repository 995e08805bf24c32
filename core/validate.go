package core

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// rangeCheck collects configuration errors for one struct. Each check treats
// zero as "use the default" and reports any other value outside [lo, hi].
type rangeCheck struct {
	prefix string
	errs   []error
}

func (c *rangeCheck) fail(field string, v any, rule string) {
	c.errs = append(c.errs, &ConfigError{Field: c.prefix + field, Value: v, Rule: rule})
}

func (c *rangeCheck) int(field string, v, lo, hi int, def string) {
	if v != 0 && (v < lo || v > hi) {
		c.fail(field, v, rangeRule(lo, hi, def))
	}
}

func (c *rangeCheck) float(field string, v, lo, hi float64, def string) {
	if v != 0 && (v < lo || v > hi || v != v) {
		c.fail(field, v, rangeRule(lo, hi, def))
	}
}

func (c *rangeCheck) duration(field string, v, lo, hi time.Duration, def string) {
	if v != 0 && (v < lo || v > hi) {
		c.fail(field, v, rangeRule(lo, hi, def))
	}
}

func (c *rangeCheck) err() error { return errors.Join(c.errs...) }

func rangeRule(lo, hi any, def string) string {
	s := fmt.Sprintf("must be between %v and %v", lo, hi)
	if def != "" {
		s += " (0 means the default, " + def + ")"
	}
	return s
}

// wrapField prefixes the field names of the configuration errors in err.
func wrapField(prefix string, err error) error {
	var out []error
	for _, e := range flatten(err) {
		if ce, ok := e.(*ConfigError); ok {
			c := *ce
			_, field, _ := strings.Cut(c.Field, ".")
			c.Field = prefix + "." + field
			out = append(out, &c)
			continue
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}
