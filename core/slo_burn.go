package core

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark/events"
)

// sloBurn is what makes an endpoint's SLO tracker act on its burn rule: it
// trips the endpoint's breaker when the rule starts firing and publishes an
// events.SLOBurn when it starts and when it ends.
type sloBurn struct {
	endpoint string
	breaker  *Breaker
	bus      *events.Bus
	clock    Clock
	burning  atomic.Bool
	// nextEval is the nanotime after which a record may re-evaluate the
	// rule, which scans the window.
	nextEval atomic.Int64
	// mu serialises changes so that their events keep their order. It is
	// only tried, never waited on: a breaker listener that records a call
	// while a change runs must not deadlock.
	mu sync.Mutex
}

// recorded applies the rule after a record. Only a failure can start a burn
// and only a success can end one; either way the rule runs at most once per
// bucket, so a burn is seen at most one bucket (ShortWindow/10) late and a
// failing request costs no more than a successful one.
func (g *sloBurn) recorded(t *SLOTracker, success bool) {
	if g.burning.Load() != success {
		return
	}
	now := g.clock.Nanotime()
	next := g.nextEval.Load()
	if now < next || !g.nextEval.CompareAndSwap(next, now+int64(t.width)) {
		return
	}
	g.evaluate(t, t.read())
}

// evaluate applies a change of the burn rule that s shows.
func (g *sloBurn) evaluate(t *SLOTracker, s SLOStatus) {
	burning := g.burning.Load()
	cfg := &t.cfg
	starts := !burning && s.Burning
	ends := burning && s.ShortBurnRate < cfg.BurnRateThreshold
	if (!starts && !ends) || !g.mu.TryLock() {
		return
	}
	defer g.mu.Unlock()
	if g.burning.Load() != burning { // another caller got here first
		return
	}
	g.burning.Store(starts)
	var reason string
	if starts {
		reason = fmt.Sprintf("SLO %.2f%% burning %.1fx over %s and %.1fx over %s",
			100*cfg.TargetSuccessRate, s.LongBurnRate, shortDuration(cfg.LongWindow), s.ShortBurnRate, shortDuration(cfg.ShortWindow))
		g.breaker.Trip(reason)
	} else {
		reason = fmt.Sprintf("SLO %.2f%% burn cleared: %.1fx over %s", 100*cfg.TargetSuccessRate, s.ShortBurnRate, shortDuration(cfg.ShortWindow))
	}
	if g.bus != nil {
		g.bus.Publish(events.SLOBurn{
			Type:            events.TypeSLOBurn,
			Endpoint:        g.endpoint,
			Burning:         starts,
			SuccessRate:     s.SuccessRate,
			BudgetRemaining: s.ErrorBudgetRemaining,
			LongBurnRate:    s.LongBurnRate,
			ShortBurnRate:   s.ShortBurnRate,
			Timestamp:       g.clock.Now().UTC(),
			Reason:          reason,
		})
	}
}

// shortDuration prints d without trailing zero units: 5m, not 5m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
