package store

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/internal/check"
)

// ErrClosed is returned by the methods of a FileStore or RedisStore after
// Close.
var ErrClosed = errors.New("store is closed")

// configError makes the errors that internal/check reports.
func configError(field string, value any, rule string) error {
	return &core.ConfigError{Field: field, Value: value, Rule: rule}
}

// checkDependency reports a required dependency that is missing, and an
// optional one (required false) that is an interface holding a nil
// pointer, which would only fail later, at its first use.
func checkDependency(c *check.Checker, field string, v any, required bool, what string) {
	switch {
	case v == nil && required:
		c.Fail(field, nil, "is required: "+what)
	case v != nil && isNilValue(v):
		c.Fail(field, fmt.Sprintf("(%T)(nil)", v), "must not be a nil pointer: "+what)
	}
}

// isNilValue reports whether v, a non-nil interface value, holds a nil
// pointer, map, slice, func or channel.
func isNilValue(v any) bool {
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.Interface:
		return rv.IsNil()
	}
	return false
}
