// Package cowmap is a bounded map for data read on every request and
// written rarely: reads are one map lookup with no lock, because a write
// replaces the whole map instead of changing it.
package cowmap

import (
	"errors"
	"maps"
	"sync"
	"sync/atomic"
)

// ErrFull is returned by LoadOrCreate when the map holds Max entries.
var ErrFull = errors.New("map is full")

// Map is a copy-on-write map bounded to Max entries. The zero value with
// Max set is ready to use.
type Map[K comparable, V any] struct {
	Max int

	items atomic.Pointer[map[K]V]
	mu    sync.Mutex // serialises writes
}

// Snapshot returns the current map. Callers must not change it.
func (m *Map[K, V]) Snapshot() map[K]V {
	if p := m.items.Load(); p != nil {
		return *p
	}
	return nil
}

// Len returns the number of entries.
func (m *Map[K, V]) Len() int { return len(m.Snapshot()) }

// Load returns the value for k.
func (m *Map[K, V]) Load(k K) (V, bool) {
	v, ok := m.Snapshot()[k]
	return v, ok
}

// LoadOrCreate returns the value for k, making it with create when absent.
// When the map is full it returns ErrFull without a lock, since a flood of
// new keys is exactly when this runs on every request. create runs under
// the write lock, so it is called at most once per key.
func (m *Map[K, V]) LoadOrCreate(k K, create func(K) (V, error)) (V, error) {
	if v, ok := m.Load(k); ok {
		return v, nil
	}
	var zero V
	if m.Len() >= m.Max {
		return zero, ErrFull
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.Snapshot()
	if v, ok := old[k]; ok {
		return v, nil
	}
	if len(old) >= m.Max {
		return zero, ErrFull
	}
	v, err := create(k)
	if err != nil {
		return zero, err
	}
	m.storeLocked(old, k, v)
	return v, nil
}

// Store sets k to v, replacing any value; past Max it does nothing and
// reports false.
func (m *Map[K, V]) Store(k K, v V) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.Snapshot()
	if _, ok := old[k]; !ok && len(old) >= m.Max {
		return false
	}
	m.storeLocked(old, k, v)
	return true
}

func (m *Map[K, V]) storeLocked(old map[K]V, k K, v V) {
	next := make(map[K]V, len(old)+1)
	maps.Copy(next, old)
	next[k] = v
	m.items.Store(&next)
}

// Delete removes k.
func (m *Map[K, V]) Delete(k K) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.Snapshot()
	if _, ok := old[k]; !ok {
		return
	}
	next := maps.Clone(old)
	delete(next, k)
	m.items.Store(&next)
}

// Locked runs fn while holding the lock that LoadOrCreate's create runs
// under, so that fn sees every key either created before it or not yet
// started. fn must not call the Map's writing methods.
func (m *Map[K, V]) Locked(fn func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fn()
}
