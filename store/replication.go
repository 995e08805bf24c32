package store

import "github.com/bulwark-go/bulwark/core"

// replica is what the stores drive in a breaker beyond its public use:
// restoring saved state, exchanging window counts with other instances,
// applying their transitions and capping half-open probes. Every call the
// package makes to those replication methods of core.Breaker is here.
type replica struct{ r core.Replication }

func replicaOf(b *core.Breaker) replica { return replica{core.ReplicationOf(b)} }

// restore puts back a state saved by an earlier run.
func (r replica) restore(s core.Snapshot) error { return r.r.Restore(s) }

// windowCounts returns this instance's own share of the rolling window.
func (r replica) windowCounts() (total, failed, slow int64) { return r.r.WindowCounts() }

// setRemoteWindow sets the other instances' share of the rolling window.
func (r replica) setRemoteWindow(total, failed, slow int64) { r.r.SetRemoteWindow(total, failed, slow) }

// forgetRemoteWindow drops the other instances' share: the window starts
// again, or their counts are no longer known.
func (r replica) forgetRemoteWindow() { r.r.SetRemoteWindow(0, 0, 0) }

// applyRemote puts the breaker into a state the cluster decided: its
// State and Reason, OpenUntil for Open, HeldBy and HoldUntil for a
// component's hold.
func (r replica) applyRemote(s core.Snapshot) bool { return r.r.ApplyRemote(s) }

// heldHere reports whether a component of this process holds the breaker:
// such a hold ends when the process stops.
func (r replica) heldHere() bool { return r.r.HeldHere() }

// limitProbes caps the half-open probes this instance admits to the n
// slots it claimed from the cluster.
func (r replica) limitProbes(n int) { r.r.SetProbeLimit(n) }

// unlimitProbes gives the breaker back its configured probe limit.
func (r replica) unlimitProbes() { r.r.SetProbeLimit(-1) }
