package admin

// Test hooks into the handler's feed, for the tests outside the package.

// Subscribers returns how many feed clients and receivers are connected.
func Subscribers(h *Handler) int { return h.hub.subscribers() }

// Seq returns the sequence number of the feed's latest event.
func Seq(h *Handler) uint64 { return h.hub.lastSeq() }

// Feeds returns how many feed connections are still being served.
func Feeds(h *Handler) int {
	h.hub.mu.Lock()
	defer h.hub.mu.Unlock()
	return len(h.hub.feeds)
}

// SampleHistory takes one history sample now, as the snapshot tick does.
func SampleHistory(h *Handler) { h.history.sample() }

// FaultJSON is a running experiment as the admin API shows it.
type FaultJSON = faultJSON
