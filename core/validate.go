package core

import (
	"errors"
	"fmt"
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
