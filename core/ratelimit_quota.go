package core

// Quota is the handle through which a store makes a RateLimiter this
// instance's share of a limit kept across a cluster, with no call to the
// store per request: every sync interval the store reads the instance's
// Demand, shares it with the other instances, and sets the instance's
// share of the limit. Applications do not need it; package store uses it.
//
// The policy belongs to the store; the one the limiter is built for:
//
//   - Each interval, the share of instance i is its part of the cluster's
//     demand, d_i / Σ d_j, where d is allowed + refused over the interval
//     plus one, so that an idle instance keeps a small share and still lets
//     its first calls through.
//   - While the store cannot reach the others, it keeps the last share and
//     moves it toward 1/N, N being the last instance count it knew, a
//     little each interval (share += (1/N − share) × (1 − e^(−Δt/τ)), τ
//     about ten intervals), so that a partition ends with each side holding
//     an even part of the limit rather than the part it had.
//   - When the store stops sharing (it is closed, or the limit is no longer
//     shared), it sets the share back to 1.
type Quota struct{ l *RateLimiter }

// QuotaOf returns l's quota handle.
func QuotaOf(l *RateLimiter) Quota { return Quota{l} }

// Demand returns the calls this instance allowed and refused since Demand
// was last called (the first time, since the limiter was made). One store
// should read it; two would split the counts between them.
func (q Quota) Demand() (allowed, refused uint64) { return q.l.demand() }

// SetShare makes the limiter the fraction f of its configured limit: Rate ×
// f calls per second (at least 0.000001), with a bucket of Burst × f (at
// least one call, and at least Rate × f × 1ms), keeping the tokens the
// bucket holds, up to the new size. f is clamped to [0.0001, 1]; NaN counts as 1, the whole limit,
// which is also what a limiter has before any share is set. The share
// stays when the limiter is reconfigured, as a fraction of the new Rate.
func (q Quota) SetShare(f float64) { q.l.setShare(f) }
