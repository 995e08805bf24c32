package core

import "github.com/bulwark-go/bulwark/events"

// Option supplies a dependency to a breaker, bulkhead, retry or SLO tracker.
type Option func(*deps)

type deps struct {
	clock Clock
	bus   *events.Bus
}

// WithClock makes the component tell time by c instead of SystemClock.
func WithClock(c Clock) Option {
	return func(d *deps) {
		if c != nil {
			d.clock = c
		}
	}
}

// WithBus makes the component publish its events on b.
func WithBus(b *events.Bus) Option {
	return func(d *deps) { d.bus = b }
}

func applyOptions(opts []Option) deps {
	d := deps{clock: SystemClock()}
	for _, o := range opts {
		o(&d)
	}
	return d
}
