package core

import "github.com/bulwark-go/bulwark/internal/check"

// newChecker returns a checker whose problems are *ConfigError values named
// prefix+field.
func newChecker(prefix string) *check.Checker { return check.New(prefix, newConfigError) }

func newConfigError(field string, v any, rule string) error {
	return &ConfigError{Field: field, Value: v, Rule: rule}
}
