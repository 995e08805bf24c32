package core

import (
	"fmt"
	"slices"
	"sync"
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
// and bounded in number. Lookups take no lock.
type registry[T any] struct {
	items sync.Map // string -> T
	mu    sync.Mutex
	names []string // sorted; under mu
	max   int
}

// get returns the component for name, creating it with create when absent.
func (r *registry[T]) get(name string, create func(string) (T, error)) (T, error) {
	if v, ok := r.items.Load(name); ok {
		return v.(T), nil
	}
	var zero T
	if err := ValidateEndpoint(name); err != nil {
		return zero, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if v, ok := r.items.Load(name); ok {
		return v.(T), nil
	}
	if len(r.names) >= r.max {
		return zero, fmt.Errorf("%w: %d tracked, the maximum; %q refused", ErrTooManyEndpoints, len(r.names), name)
	}
	v, err := create(name)
	if err != nil {
		return zero, err
	}
	r.items.Store(name, v)
	i, _ := slices.BinarySearch(r.names, name)
	r.names = slices.Insert(r.names, i, name)
	return v, nil
}

func (r *registry[T]) lookup(name string) (T, bool) {
	v, ok := r.items.Load(name)
	if !ok {
		var zero T
		return zero, false
	}
	return v.(T), true
}

// all returns every component, sorted by name.
func (r *registry[T]) all() []T {
	r.mu.Lock()
	names := slices.Clone(r.names)
	r.mu.Unlock()
	out := make([]T, 0, len(names))
	for _, n := range names {
		if v, ok := r.items.Load(n); ok {
			out = append(out, v.(T))
		}
	}
	return out
}
