package admin

import (
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/bulwark-go/bulwark/events"
)

// Bounds of the cluster view: the instances kept, and the endpoints each
// one's shares are kept for.
const (
	maxClusterInstances = 256
	maxClusterShares    = 1000
)

// cluster keeps the latest list of instances a shared-state store
// published (a StoreStatus carrying Instances).
type cluster struct {
	mu     sync.Mutex
	latest *clusterStatus
}

// clusterStatus is the "cluster" of GET …/status: the instances sharing
// the store's state, by ID.
type clusterStatus struct {
	Instances []events.Instance `json:"instances"`
}

// observe keeps the instances of a StoreStatus that lists them, and
// reports whether e was such a list: the store publishes one every few
// seconds, which the snapshots carry, so it is not an event of the feed
// or of GET …/events.
func (c *cluster) observe(e events.Event) bool {
	var s events.StoreStatus
	switch v := e.(type) {
	case events.StoreStatus:
		s = v
	case *events.StoreStatus:
		if v == nil {
			return false
		}
		s = *v
	default:
		return false
	}
	if len(s.Instances) == 0 {
		return false
	}
	list := slices.Clone(s.Instances)
	slices.SortFunc(list, func(a, b events.Instance) int { return strings.Compare(a.ID, b.ID) })
	list = list[:min(len(list), maxClusterInstances)]
	for i := range list {
		list[i].Shares = boundedShares(list[i].Shares)
	}
	c.mu.Lock()
	c.latest = &clusterStatus{Instances: list}
	c.mu.Unlock()
	return true
}

// boundedShares copies shares, keeping the first maxClusterShares
// endpoints by name: the status never holds the publisher's map.
func boundedShares(shares map[string]float64) map[string]float64 {
	if len(shares) == 0 {
		return nil
	}
	keys := slices.Sorted(maps.Keys(shares))
	out := make(map[string]float64, min(len(keys), maxClusterShares))
	for _, k := range keys[:min(len(keys), maxClusterShares)] {
		out[k] = shares[k]
	}
	return out
}

// status returns the latest view, or nil when no store listed instances.
func (c *cluster) status() *clusterStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.latest
}
