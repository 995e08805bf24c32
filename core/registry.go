package core

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"unicode"
	"unicode/utf8"

	"github.com/bulwark-go/bulwark/internal/cowmap"
)

// maxEndpointLen bounds an endpoint name in bytes.
const maxEndpointLen = 256

// ValidateEndpoint reports whether name can name an endpoint: 1 to 256
// bytes of printable UTF-8.
func ValidateEndpoint(name string) error {
	if name == "" || len(name) > maxEndpointLen {
		return fmt.Errorf("%w: length %d, want 1 to %d bytes", ErrInvalidEndpoint, len(name), maxEndpointLen)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: %q is not valid UTF-8", ErrInvalidEndpoint, name)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("%w: %q holds a non-printable character", ErrInvalidEndpoint, name)
		}
	}
	return nil
}

// registry maps endpoint names to one component each, created on first use
// and bounded in number. A lookup is one map read with no lock.
type registry[T any] struct{ m cowmap.Map[string, T] }

// get returns the component for name, creating it with create when absent.
func (r *registry[T]) get(name string, create func(string) (T, error)) (T, error) {
	if v, ok := r.m.Load(name); ok {
		return v, nil
	}
	var zero T
	if err := ValidateEndpoint(name); err != nil {
		return zero, err
	}
	v, err := r.m.LoadOrCreate(name, create)
	if errors.Is(err, cowmap.ErrFull) {
		// A flood of new names meets this on every request: the bare
		// sentinel costs no allocation.
		return zero, ErrTooManyEndpoints
	}
	return v, err
}

func (r *registry[T]) lookup(name string) (T, bool) { return r.m.Load(name) }

// all returns every component, sorted by name.
func (r *registry[T]) all() []T {
	m := r.m.Snapshot()
	out := make([]T, 0, len(m))
	for _, n := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[n])
	}
	return out
}
