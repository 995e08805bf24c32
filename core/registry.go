package core

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"
)

// MaxEndpointLen bounds an endpoint name in bytes.
const MaxEndpointLen = 256

// ValidateEndpoint reports whether name can name an endpoint: 1 to
// MaxEndpointLen bytes of printable UTF-8.
func ValidateEndpoint(name string) error {
	if name == "" || len(name) > MaxEndpointLen {
		return fmt.Errorf("%w: length %d, want 1 to %d bytes", ErrInvalidEndpoint, len(name), MaxEndpointLen)
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
// and bounded in number. A lookup is one plain map read with no lock: the
// map is copied on every insertion, which is rare (once per endpoint, and
// endpoints are bounded) while lookups happen on every request.
type registry[T any] struct {
	items atomic.Pointer[map[string]T]
	mu    sync.Mutex // serialises insertions
	max   int
}

// get returns the component for name, creating it with create when absent.
func (r *registry[T]) get(name string, create func(string) (T, error)) (T, error) {
	if v, ok := r.lookup(name); ok {
		return v, nil
	}
	var zero T
	if err := ValidateEndpoint(name); err != nil {
		return zero, err
	}
	if len(r.snapshot()) >= r.max {
		// Full: refuse without a lock or an allocation, since a flood of new
		// names is exactly when this runs on every request.
		return zero, ErrTooManyEndpoints
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.snapshot()
	if v, ok := old[name]; ok {
		return v, nil
	}
	if len(old) >= r.max {
		return zero, fmt.Errorf("%w: %d tracked, the maximum; %q refused", ErrTooManyEndpoints, len(old), name)
	}
	v, err := create(name)
	if err != nil {
		return zero, err
	}
	next := make(map[string]T, len(old)+1)
	maps.Copy(next, old)
	next[name] = v
	r.items.Store(&next)
	return v, nil
}

func (r *registry[T]) snapshot() map[string]T {
	if m := r.items.Load(); m != nil {
		return *m
	}
	return nil
}

func (r *registry[T]) lookup(name string) (T, bool) {
	v, ok := r.snapshot()[name]
	return v, ok
}

// names returns every name, sorted.
func (r *registry[T]) names() []string {
	return slices.Sorted(maps.Keys(r.snapshot()))
}

// all returns every component, sorted by name.
func (r *registry[T]) all() []T {
	m := r.snapshot()
	out := make([]T, 0, len(m))
	for _, n := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[n])
	}
	return out
}
