package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
)

// Bounds on what the store writes and accepts from Redis.
const (
	maxReasonLen   = 1024               // bytes of a transition's reason
	maxIDLen       = 128                // bytes of an instance ID or key prefix
	maxMessageLen  = 8 << 10            // bytes of a pub/sub message
	maxOpenAhead   = 8 * 24 * time.Hour // longest believable open time (core caps it at 7 days)
	maxVersion     = 1 << 53            // versions are Lua numbers in the scripts
	maxWindowField = 10_000             // instances' entries read per window
)

// redisKeys are one endpoint's keys. All share the hash tag
// {prefix:endpoint}, so in Redis Cluster they live in one slot and one
// script can touch them together.
type redisKeys struct {
	state  string // hash: version, state, old_state, open_until (Unix ms), reason, origin, updated (Unix ms), window_epoch
	window string // hash: instance ID -> "total failed slow pushed_ms version"
	probes string // hash: version, claimed
}

func newRedisKeys(prefix, endpoint string) redisKeys {
	tag := "{" + prefix + ":" + escapeEndpoint(endpoint) + "}"
	return redisKeys{state: tag + ":state", window: tag + ":window", probes: tag + ":probes"}
}

// escapeEndpoint percent-encodes every byte outside [A-Za-z0-9._~/-], '%'
// included, so that distinct endpoints give distinct keys and no endpoint
// can close the hash tag ('}') or fake another key's separators (':').
func escapeEndpoint(name string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(name))
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '.' || c == '_' || c == '~' || c == '/' || c == '-' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// validID reports whether s can be a key prefix or an instance ID: 1 to
// maxIDLen bytes of [A-Za-z0-9._:-]. Braces are excluded because they would
// change the keys' hash tag, spaces because IDs appear in window entries.
func validID(s string) bool {
	if s == "" || len(s) > maxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// clusterState is one endpoint's shared state, as stored in its hash and
// carried by a transition message.
type clusterState struct {
	Version   uint64
	State     core.State
	OldState  core.State
	OpenUntil time.Time // zero unless Open
	Reason    string
	Origin    string
	Updated   time.Time // when the transition was decided
}

// errMalformed is matched by every error about a payload read from Redis.
var errMalformed = errors.New("malformed shared state")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errMalformed, fmt.Sprintf(format, args...))
}

// wireMessage is the JSON a winning compare-and-set publishes.
type wireMessage struct {
	Endpoint  string `json:"endpoint"`
	Version   int64  `json:"version"`
	State     string `json:"state"`
	OldState  string `json:"old_state"`
	OpenUntil int64  `json:"open_until"` // Unix ms; 0 unless Open
	Reason    string `json:"reason"`
	Origin    string `json:"origin"`
	Updated   int64  `json:"updated"` // Unix ms: when the transition was decided
}

// decodeMessage parses and validates a transition message. Unknown fields,
// trailing data, wrong types and out-of-range values are errors; it never
// panics.
func decodeMessage(payload []byte, now time.Time) (string, clusterState, error) {
	if len(payload) > maxMessageLen {
		return "", clusterState{}, malformed("message of %d bytes, more than %d", len(payload), maxMessageLen)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	var m wireMessage
	if err := dec.Decode(&m); err != nil {
		return "", clusterState{}, malformed("message: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", clusterState{}, malformed("message: data after the JSON object")
	}
	if err := core.ValidateEndpoint(m.Endpoint); err != nil {
		return "", clusterState{}, malformed("message: %v", err)
	}
	cs, err := checkState(m.Version, m.State, m.OldState, m.OpenUntil, m.Reason, m.Origin, m.Updated, now)
	if err != nil {
		return "", clusterState{}, fmt.Errorf("message for %q: %w", m.Endpoint, err)
	}
	return m.Endpoint, cs, nil
}

// parseStateHash validates an endpoint's state hash (field, value pairs).
// An empty hash is (clusterState{}, false, nil): no shared state yet.
func parseStateHash(pairs []any, now time.Time) (clusterState, bool, error) {
	if len(pairs) == 0 {
		return clusterState{}, false, nil
	}
	if len(pairs)%2 != 0 || len(pairs) > 64 {
		return clusterState{}, true, malformed("state hash with %d items", len(pairs))
	}
	f := make(map[string]string, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		k, ok1 := pairs[i].(string)
		v, ok2 := pairs[i+1].(string)
		if !ok1 || !ok2 {
			return clusterState{}, true, malformed("state hash holds a non-string item")
		}
		f[k] = v
	}
	if t, ok := f["_type"]; ok && len(f) == 1 { // the sync script's note on a key of another type
		return clusterState{}, true, malformed("state key holds a %.20s, not a hash", t)
	}
	num := func(name string) (int64, error) {
		s, ok := f[name]
		if !ok {
			return 0, malformed("state hash lacks %q", name)
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, malformed("state hash field %q = %.40q is not an integer", name, s)
		}
		return n, nil
	}
	var nums [3]int64
	for i, name := range [...]string{"version", "open_until", "updated"} {
		n, err := num(name)
		if err != nil {
			return clusterState{}, true, err
		}
		nums[i] = n
	}
	for _, name := range [...]string{"state", "old_state", "reason", "origin"} {
		if _, ok := f[name]; !ok {
			return clusterState{}, true, malformed("state hash lacks %q", name)
		}
	}
	cs, err := checkState(nums[0], f["state"], f["old_state"], nums[1], f["reason"], f["origin"], nums[2], now)
	return cs, true, err
}

// checkState validates the fields common to messages and hashes.
func checkState(version int64, state, oldState string, openUntil int64, reason, origin string, updated int64, now time.Time) (clusterState, error) {
	var cs clusterState
	if version < 1 || version > maxVersion {
		return cs, malformed("version %d out of range 1 to 2^53", version)
	}
	st, err := events.ParseState(state)
	if err != nil {
		return cs, malformed("state: %v", err)
	}
	old, err := events.ParseState(oldState)
	if err != nil {
		return cs, malformed("old_state: %v", err)
	}
	if len(reason) > maxReasonLen || !utf8.ValidString(reason) {
		return cs, malformed("reason is not UTF-8 of at most %d bytes", maxReasonLen)
	}
	if !validID(origin) {
		return cs, malformed("origin %.40q is not a valid instance ID", origin)
	}
	if updated <= 0 || updated > now.Add(maxOpenAhead).UnixMilli() {
		return cs, malformed("updated %d out of range", updated)
	}
	cs = clusterState{Version: uint64(version), State: st, OldState: old, Reason: reason, Origin: origin, Updated: time.UnixMilli(updated)}
	if st == core.Open {
		if openUntil <= 0 || openUntil > now.Add(maxOpenAhead).UnixMilli() {
			return clusterState{}, malformed("open_until %d out of range for an Open state", openUntil)
		}
		cs.OpenUntil = time.UnixMilli(openUntil)
	} else if openUntil < 0 {
		return clusterState{}, malformed("open_until %d is negative", openUntil)
	}
	return cs, nil
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
