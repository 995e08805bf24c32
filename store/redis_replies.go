package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
)

// Everything the store reads from Redis is parsed here, into typed values,
// and validated: the replies of the three scripts, state hashes and
// transition messages. Whatever Redis holds may have been written by hand
// or by another version, so every parser rejects, with an error matching
// errMalformed, anything that an instance of this version would not have
// written, and none of them panics.

// clusterState is one endpoint's shared state, as stored in its hash and
// carried by a transition message.
type clusterState struct {
	Version   uint64
	State     events.State
	OldState  events.State
	OpenUntil time.Time // zero unless Open
	HeldBy    string    // a component hold's owner; "" unless ForcedOpen by one
	HoldUntil time.Time // when that hold lapses unless renewed; zero without one
	Reason    string
	Origin    string
	Updated   time.Time // when the transition was decided
}

// errMalformed is matched by every error about a payload read from Redis.
var errMalformed = errors.New("malformed shared state")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errMalformed, fmt.Sprintf(format, args...))
}

// decodeStrict decodes one JSON object of at most limit bytes into v:
// unknown fields and trailing data are errors.
func decodeStrict(payload []byte, limit int, v any) error {
	if len(payload) > limit {
		return fmt.Errorf("%d bytes, more than %d", len(payload), limit)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("data after the JSON object")
	}
	return nil
}

// wireMessage is the JSON a winning compare-and-set publishes.
type wireMessage struct {
	Endpoint  string `json:"endpoint"`
	Version   int64  `json:"version"`
	State     string `json:"state"`
	OldState  string `json:"old_state"`
	OpenUntil int64  `json:"open_until"` // Unix ms; 0 unless Open
	HeldBy    string `json:"held_by,omitempty"`
	HoldUntil int64  `json:"hold_until,omitempty"` // Unix ms; 0 without a component's hold
	Reason    string `json:"reason"`
	Origin    string `json:"origin"`
	Updated   int64  `json:"updated"` // Unix ms: when the transition was decided
}

// decodeMessage parses and validates a transition message. Unknown fields,
// trailing data, wrong types and out-of-range values are errors; it never
// panics.
func decodeMessage(payload []byte, now time.Time) (string, clusterState, error) {
	var m wireMessage
	if err := decodeStrict(payload, maxMessageLen, &m); err != nil {
		return "", clusterState{}, malformed("message: %v", err)
	}
	if err := core.ValidateEndpoint(m.Endpoint); err != nil {
		return "", clusterState{}, malformed("message: %v", err)
	}
	cs, err := checkState(m.Version, m.State, m.OldState, m.OpenUntil, m.Reason, m.Origin, m.Updated, now)
	if err == nil {
		err = checkHold(&cs, m.HeldBy, m.HoldUntil, now)
	}
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
	if err != nil {
		return clusterState{}, true, err
	}
	// A hash written before holds were shared has neither field.
	var holdUntil int64
	if v, ok := f["hold_until"]; ok && v != "" {
		if holdUntil, err = num("hold_until"); err != nil {
			return clusterState{}, true, err
		}
	}
	if err := checkHold(&cs, f["held_by"], holdUntil, now); err != nil {
		return clusterState{}, true, err
	}
	return cs, true, nil
}

// checkHold validates a component hold's owner and end (Unix ms) and puts
// them in cs: both or neither, and only on a ForcedOpen state.
func checkHold(cs *clusterState, heldBy string, holdUntil int64, now time.Time) error {
	switch {
	case heldBy == "" && holdUntil == 0:
		return nil
	case heldBy == "":
		return malformed("hold_until %d without held_by", holdUntil)
	case cs.State != events.ForcedOpen:
		return malformed("held_by %.40q on a %s state: only ForcedOpen is held", heldBy, cs.State)
	case len(heldBy) > maxOwnerLen || !utf8.ValidString(heldBy):
		return malformed("held_by is not UTF-8 of at most %d bytes", maxOwnerLen)
	case holdUntil <= 0 || holdUntil > now.Add(maxHoldAhead).UnixMilli():
		return malformed("hold_until %d out of range for a hold", holdUntil)
	}
	cs.HeldBy, cs.HoldUntil = heldBy, time.UnixMilli(holdUntil)
	return nil
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
	if st == events.Open {
		if openUntil <= 0 || openUntil > now.Add(maxOpenAhead).UnixMilli() {
			return clusterState{}, malformed("open_until %d out of range for an Open state", openUntil)
		}
		cs.OpenUntil = time.UnixMilli(openUntil)
	} else if openUntil < 0 {
		return clusterState{}, malformed("open_until %d is negative", openUntil)
	}
	return cs, nil
}

// stateRead is an endpoint's state hash as read from Redis.
type stateRead struct {
	cs      clusterState
	present bool  // Redis holds a valid state
	err     error // why a hash that is there was not valid (present is then false)
}

func readState(pairs []any, now time.Time) stateRead {
	cs, present, err := parseStateHash(pairs, now)
	if err != nil {
		return stateRead{err: err}
	}
	return stateRead{cs: cs, present: present}
}

// casReply is the compare-and-set script's reply.
type casReply struct {
	won     bool
	version uint64       // the new version, or for a loser the one the script read
	old     events.State // a winner's: the state it replaced
	claimed int          // a winner's: half-open probe slots claimed with the transition
	cur     stateRead    // a loser's: the state that stands
}

// parseCASReply parses {1, version, old state, updated ms, claimed} (won)
// or {0, {field, value, ...}, version} (lost). maxClaim is the most probe
// slots the proposal asked for.
func parseCASReply(v any, maxClaim int, now time.Time) (casReply, error) {
	r, ok := v.([]any)
	if !ok {
		return casReply{}, malformed("compare-and-set reply of type %T", v)
	}
	switch {
	case len(r) == 3 && isInt(r[0], 0):
		hash, ok := r[1].([]any)
		if !ok {
			return casReply{}, malformed("compare-and-set reply: state hash of type %T", r[1])
		}
		ver, err := replyInt(r[2], "version read", 0, maxVersion)
		if err != nil {
			return casReply{}, err
		}
		return casReply{version: uint64(ver), cur: readState(hash, now)}, nil
	case len(r) == 5 && isInt(r[0], 1):
		ver, err := replyInt(r[1], "new version", 1, maxVersion)
		if err != nil {
			return casReply{}, err
		}
		oldName, ok := r[2].(string)
		if !ok {
			return casReply{}, malformed("compare-and-set reply: old state of type %T", r[2])
		}
		old, err := events.ParseState(oldName)
		if err != nil {
			return casReply{}, malformed("compare-and-set reply: old state: %v", err)
		}
		if _, err := replyInt(r[3], "transition time", 1, now.Add(maxOpenAhead).UnixMilli()); err != nil {
			return casReply{}, err
		}
		claimed, err := replyInt(r[4], "probe slots claimed", 0, int64(max(maxClaim, 0)))
		if err != nil {
			return casReply{}, err
		}
		return casReply{won: true, version: uint64(ver), old: old, claimed: int(claimed)}, nil
	}
	return casReply{}, malformed("compare-and-set reply %.200v", r)
}

// syncItem is what the sync script says of one endpoint.
type syncItem struct {
	changed  bool      // the state hash was returned: its version moved, or it was asked for
	state    stateRead // when changed
	settings *Override // a settings change past the known version
	setErr   error     // why the settings returned were not valid
	push     *pushResult
	pushErr  error // why a push's reply was not valid
}

// syncBatch is the sync script's reply for a batch of endpoints.
type syncBatch struct {
	redisTime time.Time
	changes   string     // the settings change counter, "" when absent
	items     []syncItem // by endpoint, in the batch's order
}

// parseSyncBatch parses {seconds, microseconds, settings change counter,
// item...} for a batch of
// endpoints named names; pushed says which endpoints pushed. An item is a
// push's packed reply, or {index, state, settings, push or nil}. A defect
// in one endpoint's push is that item's error; a defect in the reply's
// shape is the error.
func parseSyncBatch(v any, names []string, pushed []bool) (syncBatch, error) {
	r, ok := v.([]any)
	if !ok || len(r) < 2 {
		return syncBatch{}, malformed("sync reply %.200v", v)
	}
	t, err := replyTime(r[0], r[1])
	if err != nil {
		return syncBatch{}, err
	}
	out := syncBatch{redisTime: t, items: make([]syncItem, len(names))}
	now := out.redisTime
	if len(r) < 3 || len(r)-3 > len(names) {
		return syncBatch{}, malformed("sync reply: %d items for %d endpoints", len(r)-3, len(names))
	}
	switch c := r[2].(type) {
	case nil:
	case string:
		if n, err := strconv.ParseUint(c, 10, 64); err != nil || strconv.FormatUint(n, 10) != c {
			return syncBatch{}, malformed("sync reply: settings change counter %.40q", c)
		}
		out.changes = c
	default:
		return syncBatch{}, malformed("sync reply: settings change counter of type %T", c)
	}
	last := 0
	for _, x := range r[3:] {
		var i int
		var push any
		switch x := x.(type) {
		case string:
			if len(x) < 5 {
				return syncBatch{}, malformed("sync reply: window of %d bytes", len(x))
			}
			i, push = int(binary.LittleEndian.Uint32([]byte(x))), x
		case []any:
			if len(x) != 4 {
				return syncBatch{}, malformed("sync reply item of %d elements", len(x))
			}
			n, err := replyInt(x[0], "item index", 1, int64(len(names)))
			if err != nil {
				return syncBatch{}, err
			}
			i, push = int(n), x[3]
			it := &out.items[i-1]
			if x[1] != nil {
				hash, ok := x[1].([]any)
				if !ok {
					return syncBatch{}, malformed("sync reply: state hash of type %T", x[1])
				}
				it.changed, it.state = true, readState(hash, now)
			}
			if x[2] != nil {
				it.settings, it.setErr = readSettings(names[i-1], x[2], now)
			}
		default:
			return syncBatch{}, malformed("sync reply item %.100v", x)
		}
		if i <= last || i > len(names) {
			return syncBatch{}, malformed("sync reply: item %d after %d, of %d", i, last, len(names))
		}
		last = i
		switch {
		case push == nil:
		case !pushed[i-1]:
			return syncBatch{}, malformed("sync reply: a window without a push")
		default:
			out.items[i-1].push, out.items[i-1].pushErr = parsePush(push, i)
		}
	}
	for i := range out.items {
		if pushed[i] && out.items[i].push == nil && out.items[i].pushErr == nil {
			out.items[i].pushErr = malformed("sync reply: no window for a push")
		}
	}
	return out, nil
}

// readSettings validates the settings the sync script returned: the
// fields of the hash, or {"_type", type} for a key of another type.
func readSettings(endpoint string, v any, now time.Time) (*Override, error) {
	vals, ok := v.([]any)
	if !ok {
		return nil, malformed("settings of type %T", v)
	}
	if len(vals) == 2 && vals[0] == "_type" {
		return nil, malformed("settings key holds a %.20v, not a hash", vals[1])
	}
	o, present, err := parseSettingsHash(endpoint, vals, now)
	if err != nil || !present {
		return nil, err
	}
	return &o, nil
}

// parsePush parses a push's packed reply (see syncScript) for the
// endpoint at index i of its batch.
func parsePush(v any, i int) (*pushResult, error) {
	b, ok := v.(string)
	if !ok || len(b) < 5 || binary.LittleEndian.Uint32([]byte(b)) != uint32(i) {
		return nil, malformed("window reply %.100q", v)
	}
	f := func(off int) (int64, bool) {
		x := math.Float64frombits(binary.LittleEndian.Uint64([]byte(b[off:])))
		return int64(x), x >= 0 && x <= maxVersion && x == math.Floor(x)
	}
	u := func(off int) int64 { return int64(binary.LittleEndian.Uint32([]byte(b[off:]))) }
	switch {
	case b[4] == 0 && len(b) == 13:
		epoch, ok := f(5)
		if !ok {
			return nil, malformed("window reply: bad epoch")
		}
		return &pushResult{epoch: uint64(epoch)}, nil
	case b[4] == 1 && len(b) == 37, b[4] == 2 && len(b) == 85:
	default:
		return nil, malformed("window reply of kind %d and %d bytes", b[4], len(b))
	}
	var nums [7]int64 // bucket, window (3), previous cumulative counts (3)
	offs := []int{5, 13, 21, 29}
	if b[4] == 2 {
		offs = append(offs, 49, 57, 65)
	}
	for k, off := range offs {
		n, ok := f(off)
		if !ok {
			return nil, malformed("window reply: a count out of range")
		}
		nums[k] = n
	}
	out := &pushResult{pushed: true, confirmed: b[4] == 1, idx: nums[0], window: counts3{nums[1], nums[2], nums[3]}}
	if out.window.failed > out.window.total || out.window.slow > out.window.total {
		return nil, malformed("window reply: %d failed and %d slow of %d calls", out.window.failed, out.window.slow, out.window.total)
	}
	if out.confirmed {
		return out, nil
	}
	out.added, out.removed = counts3{u(37), u(41), u(45)}, u(81)
	if out.added.failed > out.added.total || out.added.slow > out.added.total {
		return nil, malformed("window reply: %d failed and %d slow of %d calls added", out.added.failed, out.added.slow, out.added.total)
	}
	switch pi := math.Float64frombits(binary.LittleEndian.Uint64([]byte(b[73:]))); {
	case pi == -1:
	case pi >= 0 && pi <= maxVersion && pi == math.Floor(pi):
		out.prev = &prevEntry{cum: counts3{nums[4], nums[5], nums[6]}, idx: int64(pi)}
		if nums[5] > nums[4] || nums[6] > nums[4] {
			return nil, malformed("window reply: previous push of %d failed and %d slow of %d calls", nums[5], nums[6], nums[4])
		}
	default:
		return nil, malformed("window reply: bucket %v", pi)
	}
	return out, nil
}

// parseClaimReply parses the claim script's reply: the probe slots
// granted, at most the want asked for.
func parseClaimReply(v any, want int) (int, error) {
	n, err := replyInt(v, "probe slots granted", 0, int64(max(want, 0)))
	return int(n), err
}

func isInt(v any, want int64) bool {
	n, ok := v.(int64)
	return ok && n == want
}

// replyTime parses Redis's TIME, as a script returns it: seconds and
// microseconds.
func replyTime(sec, usec any) (time.Time, error) {
	s, err := replyInt(sec, "Redis time", 1, 1e11)
	if err != nil {
		return time.Time{}, err
	}
	us, err := replyInt(usec, "Redis time µs", 0, 999_999)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(s, us*1000), nil
}

// replyInt checks that v is an integer reply between lo and hi.
func replyInt(v any, what string, lo, hi int64) (int64, error) {
	n, ok := v.(int64)
	if !ok {
		return 0, malformed("%s of type %T", what, v)
	}
	if n < lo || n > hi {
		return 0, malformed("%s %d out of range %d to %d", what, n, lo, hi)
	}
	return n, nil
}
