package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"github.com/bulwark-go/bulwark/events"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/core"
)

// FuzzDecodeMessage feeds arbitrary payloads to the pub/sub decoder: it
// must never panic, and what it accepts must be a valid state that
// survives a round trip.
func FuzzDecodeMessage(f *testing.F) {
	now := time.Unix(1_760_000_000, 0)
	f.Add([]byte(`{"endpoint":"api","version":7,"state":"Open","old_state":"Closed","open_until":1760000060000,"reason":"x","origin":"a","updated":1760000000000}`))
	f.Add([]byte(`{"endpoint":"a\/b","version":1,"state":"Closed","old_state":"HalfOpen","open_until":0,"reason":"","origin":"x","updated":5}`))
	f.Add([]byte(`{"endpoint":"db","version":9,"state":"ForcedOpen","old_state":"Closed","open_until":0,"held_by":"health ping","hold_until":1760000095000,"reason":"x","origin":"a","updated":1760000000000}`))
	f.Add([]byte(`{{{`))
	f.Add([]byte(`{"endpoint":"api","version":1e3}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		name, cs, err := decodeMessage(payload, now)
		if err != nil {
			return
		}
		if !cs.State.Valid() || !cs.OldState.Valid() || cs.Version < 1 || cs.Version > maxVersion || !validID(cs.Origin) ||
			(cs.HeldBy == "") != cs.HoldUntil.IsZero() || (cs.HeldBy != "" && cs.State != events.ForcedOpen) {
			t.Fatalf("accepted an invalid state: %q %+v", name, cs)
		}
		back, err := json.Marshal(wireMessage{
			Endpoint: name, Version: int64(cs.Version), State: cs.State.String(), OldState: cs.OldState.String(),
			OpenUntil: untilMillis(cs), HeldBy: cs.HeldBy, HoldUntil: holdUntilMillis(cs),
			Reason: cs.Reason, Origin: cs.Origin, Updated: cs.Updated.UnixMilli(),
		})
		if err != nil {
			t.Fatal(err)
		}
		name2, cs2, err := decodeMessage(back, now)
		if err != nil || name2 != name || cs2.Version != cs.Version || cs2.State != cs.State || !cs2.OpenUntil.Equal(cs.OpenUntil) ||
			cs2.HeldBy != cs.HeldBy || !cs2.HoldUntil.Equal(cs.HoldUntil) {
			t.Fatalf("round trip: %q %+v -> %s -> %q %+v %v", name, cs, back, name2, cs2, err)
		}
	})
}

func untilMillis(cs clusterState) int64 {
	if cs.OpenUntil.IsZero() {
		return 0
	}
	return cs.OpenUntil.UnixMilli()
}

func holdUntilMillis(cs clusterState) int64 {
	if cs.HoldUntil.IsZero() {
		return 0
	}
	return cs.HoldUntil.UnixMilli()
}

// FuzzParseStateHash feeds arbitrary field/value lists (NUL-separated) to
// the state hash parser: no panic, and only valid states accepted.
func FuzzParseStateHash(f *testing.F) {
	now := time.Unix(1_760_000_000, 0)
	f.Add("version\x004\x00state\x00Open\x00old_state\x00Closed\x00open_until\x001760000060000\x00reason\x00x\x00origin\x00a\x00updated\x001760000000000")
	f.Add("version\x005\x00state\x00ForcedOpen\x00old_state\x00Closed\x00open_until\x000\x00held_by\x00health ping\x00hold_until\x001760000095000\x00reason\x00x\x00origin\x00a\x00updated\x001760000000000")
	f.Add("version\x00x")
	f.Add("_type\x00string")
	f.Fuzz(func(t *testing.T, flat string) {
		var pairs []any
		for _, s := range strings.Split(flat, "\x00") {
			pairs = append(pairs, s)
		}
		cs, present, err := parseStateHash(pairs, now)
		if err != nil || !present {
			return
		}
		if !cs.State.Valid() || cs.Version < 1 || (cs.State == events.Open) == cs.OpenUntil.IsZero() ||
			(cs.HeldBy == "") != cs.HoldUntil.IsZero() || (cs.HeldBy != "" && cs.State != events.ForcedOpen) ||
			len(cs.HeldBy) > maxOwnerLen || !cs.HoldUntil.IsZero() && cs.HoldUntil.After(now.Add(maxHoldAhead)) {
			t.Fatalf("accepted an invalid state: %+v", cs)
		}
	})
}

// replyFrom builds a reply value, as go-redis returns script replies, from
// fuzz input: 'i' and 8 bytes is an int64, 's', a length byte and that many
// bytes a string, 'a' and a count byte (at most 16) an array of the items
// that follow; any other byte is a value no script returns (a float). It
// returns what is left of data.
func replyFrom(data []byte, depth int) (any, []byte) {
	if len(data) == 0 {
		return nil, nil
	}
	tag, data := data[0], data[1:]
	switch {
	case tag == 'i' && len(data) >= 8:
		return int64(binary.BigEndian.Uint64(data)), data[8:]
	case tag == 's' && len(data) >= 1 && int(data[0]) <= len(data)-1:
		n := int(data[0])
		return string(data[1 : 1+n]), data[1+n:]
	case tag == 'a' && len(data) >= 1 && depth < 3:
		n := min(int(data[0]), 16)
		data = data[1:]
		out := make([]any, 0, n)
		for range n {
			var v any
			v, data = replyFrom(data, depth+1)
			out = append(out, v)
		}
		return out, data
	}
	return float64(tag), data
}

// replyBytes is the inverse of replyFrom, for seeds.
func replyBytes(v any) []byte {
	switch v := v.(type) {
	case int64:
		return binary.BigEndian.AppendUint64([]byte{'i'}, uint64(v))
	case int:
		return replyBytes(int64(v))
	case string:
		return append([]byte{'s', byte(len(v))}, v...)
	case []any:
		b := []byte{'a', byte(len(v))}
		for _, x := range v {
			b = append(b, replyBytes(x)...)
		}
		return b
	}
	return []byte{'?'}
}

var fuzzNow = time.Unix(1_760_000_000, 0)

func fuzzStateHash() []any {
	return []any{"version", "4", "state", "Open", "old_state", "Closed", "open_until", "1760000060000",
		"reason", "x", "origin", "a", "updated", "1760000000000"}
}

func fuzzHeldHash() []any {
	return []any{"version", "5", "state", "ForcedOpen", "old_state", "Closed", "open_until", "0",
		"held_by", "health ping", "hold_until", "1760000095000", "reason", "x", "origin", "a", "updated", "1760000000000"}
}

// checkStateRead fails unless r is a valid state, no state, or an error.
func checkStateRead(t *testing.T, r stateRead) {
	t.Helper()
	switch {
	case r.err != nil && r.present:
		t.Fatalf("a state both present and in error: %+v", r)
	case r.present && (!r.cs.State.Valid() || !r.cs.OldState.Valid() || r.cs.Version < 1 || r.cs.Version > maxVersion ||
		(r.cs.State == events.Open) == r.cs.OpenUntil.IsZero() || !validID(r.cs.Origin) ||
		(r.cs.HeldBy == "") != r.cs.HoldUntil.IsZero() || (r.cs.HeldBy != "" && r.cs.State != events.ForcedOpen)):
		t.Fatalf("accepted an invalid state: %+v", r.cs)
	}
}

// FuzzParseCASReply: no panic; an accepted reply is a winner with a valid
// version, old state and claim, or a loser with a valid state, none, or
// the error of its hash.
func FuzzParseCASReply(f *testing.F) {
	f.Add(replyBytes([]any{1, 9, "Closed", 1760000000000, 2}), 3)
	f.Add(replyBytes([]any{0, fuzzStateHash(), 4}), 0)
	f.Add(replyBytes([]any{0, fuzzHeldHash(), 5}), 0)
	f.Add(replyBytes([]any{0, []any{}, 0}), 0)
	f.Add(replyBytes([]any{0, []any{"_type", "string"}, 0}), 0)
	f.Add([]byte("a\x05i"), 1)
	f.Fuzz(func(t *testing.T, data []byte, maxClaim int) {
		v, _ := replyFrom(data, 0)
		r, err := parseCASReply(v, maxClaim, fuzzNow)
		switch {
		case err != nil:
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v does not match errMalformed", err)
			}
		case r.won:
			if r.version < 1 || r.version > maxVersion || !r.old.Valid() || r.claimed < 0 || r.claimed > max(maxClaim, 0) {
				t.Fatalf("accepted an invalid winner: %+v", r)
			}
		default:
			if r.version > maxVersion {
				t.Fatalf("accepted version %d", r.version)
			}
			checkStateRead(t, r.cur)
		}
	})
}

// FuzzParseSyncBatch: no panic; accepted windows are consistent, and a
// returned state or settings change is valid, absent or in error.
func FuzzParseSyncBatch(f *testing.F) {
	p1 := packedPush(1, 1760000000, counts3{24, 9, 1}, counts3{2, 1, 0}, counts3{40, 2, 0}, 1759999999, 0)
	p3 := packedPush(3, 1760000000, counts3{24, 9, 1}, counts3{2, 1, 0}, counts3{}, -1, 2)
	f.Add(replyBytes([]any{1760000000, 5, "7", []any{1, []any{}, []any{"3", "{}", "a", "1760000000000"}, p1}}))
	f.Add(replyBytes([]any{1760000000, 5, "7", []any{2, fuzzStateHash(), []any{"_type", "string"}, packedOlder(2, 4)}}))
	f.Add(replyBytes([]any{1760000000, 5, "7", p1, []any{2, fuzzHeldHash(), []any{}, nil}, p3}))
	f.Add([]byte("a\x03ii"))
	names := []string{"a", "b", "c"}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, _ := replyFrom(data, 0)
		for _, pushed := range [][]bool{{true, false, true}, {false, true, false}} {
			r, err := parseSyncBatch(v, names, pushed)
			if err != nil {
				if !errors.Is(err, errMalformed) {
					t.Fatalf("error %v does not match errMalformed", err)
				}
				continue
			}
			for i, it := range r.items {
				if !it.changed && (it.state.present || it.state.err != nil) {
					t.Fatalf("a state without a change: %+v", it)
				}
				checkStateRead(t, it.state)
				if it.settings != nil {
					if err := checkOverride(it.settings); err != nil || it.settings.Version < 1 {
						t.Fatalf("accepted settings %+v: %v", it.settings, err)
					}
				}
				if it.push != nil && !pushed[i] || pushed[i] && it.push == nil && it.pushErr == nil {
					t.Fatalf("item %d: push %+v (pushed %v)", i, it.push, pushed[i])
				}
				if p := it.push; p != nil {
					for _, c := range []counts3{p.window, p.added} {
						if c.total < 0 || c.failed < 0 || c.slow < 0 || c.failed > c.total || c.slow > c.total || c.total > maxVersion {
							t.Fatalf("accepted counts %+v", p)
						}
					}
					if p.idx < 0 || p.epoch > maxVersion || p.removed < 0 || p.prev != nil && (p.prev.idx < 0 || p.prev.cum.failed > p.prev.cum.total) {
						t.Fatalf("accepted %+v", p)
					}
				}
			}
		}
	})
}

// FuzzParseClaimReply: no panic; a grant is between 0 and what was asked.
func FuzzParseClaimReply(f *testing.F) {
	f.Add(replyBytes(2), 3)
	f.Add(replyBytes(-1), 3)
	f.Add(replyBytes("2"), 3)
	f.Fuzz(func(t *testing.T, data []byte, want int) {
		v, _ := replyFrom(data, 0)
		n, err := parseClaimReply(v, want)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v does not match errMalformed", err)
			}
			return
		}
		if n < 0 || n > max(want, 0) {
			t.Fatalf("granted %d of %d", n, want)
		}
	})
}

// FuzzDecodeSettingsMessage: no panic; an accepted message is a valid
// override (a valid document, or none for a removal) that survives a
// round trip.
func FuzzDecodeSettingsMessage(f *testing.F) {
	f.Add([]byte(`{"endpoint":"api","version":3,"instance":"web-1","at":1760000000000,"settings":"{\"timeout\":\"1s\"}"}`))
	f.Add([]byte(`{"endpoint":"a\/b","version":1,"instance":"x","at":5,"settings":""}`))
	f.Add([]byte(`{"endpoint":"api","version":1,"instance":"x","at":5,"settings":"{oops"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		o, err := decodeSettingsMessage(payload, fuzzNow)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v does not match errMalformed", err)
			}
			return
		}
		if err := checkOverride(&o); err != nil || o.Version < 1 || !validID(o.Instance) || o.At.IsZero() {
			t.Fatalf("accepted an invalid override %+v: %v", o, err)
		}
		back, err := json.Marshal(wireSettings{Endpoint: o.Endpoint, Version: int64(o.Version), Instance: o.Instance,
			At: o.At.UnixMilli(), Settings: string(o.Settings)})
		if err != nil {
			t.Fatal(err)
		}
		o2, err := decodeSettingsMessage(back, fuzzNow)
		if err != nil || o2.Endpoint != o.Endpoint || o2.Version != o.Version || string(o2.Settings) != string(o.Settings) ||
			(o2.Settings == nil) != (o.Settings == nil) || !o2.At.Equal(o.At) {
			t.Fatalf("round trip: %+v -> %s -> %+v %v", o, back, o2, err)
		}
	})
}

// FuzzParseSettingsHash: no panic; only valid overrides are accepted.
func FuzzParseSettingsHash(f *testing.F) {
	f.Add(replyBytes([]any{"3", `{"a":1}`, "web-1", "1760000000000"}))
	f.Add(replyBytes([]any{"4", "", "web-1", "1760000000000"}))
	f.Add([]byte("a\x04"))
	f.Add(replyBytes([]any{"x", "{}", "a b", "-1"}))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, _ := replyFrom(data, 0)
		vals, _ := v.([]any)
		for i, x := range vals {
			if _, ok := x.(float64); ok {
				vals[i] = nil // HMGET's missing field
			}
		}
		o, ok, err := parseSettingsHash("api", vals, fuzzNow)
		switch {
		case err != nil:
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v does not match errMalformed", err)
			}
		case ok:
			if err := checkOverride(&o); err != nil || o.Version < 1 || !validID(o.Instance) || o.At.IsZero() {
				t.Fatalf("accepted an invalid override %+v: %v", o, err)
			}
		}
	})
}

// FuzzParsePutReply: no panic; a version from 1 to 2^53 and a time.
func FuzzParsePutReply(f *testing.F) {
	f.Add(replyBytes([]any{3, 1760000000000}))
	f.Add(replyBytes([]any{0, 1}))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, _ := replyFrom(data, 0)
		ver, at, err := parsePutReply(v, fuzzNow)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v does not match errMalformed", err)
			}
			return
		}
		if ver < 1 || ver > maxVersion || at.UnixMilli() < 1 {
			t.Fatalf("accepted %d %v", ver, at)
		}
	})
}

// FuzzDecodeFaultMessage: no panic; an accepted start carries an
// experiment whose ID, endpoint, origin and end are in range, and which
// survives a round trip.
func FuzzDecodeFaultMessage(f *testing.F) {
	f.Add([]byte(`{"op":"start","instance":"web-1","fault":{"id":"f1","endpoint":"GET /x","percent":50,"status":500,"duration_ns":60000000000,"ends":1760000060000,"origin":"web-1"}}`))
	f.Add([]byte(`{"op":"stop","instance":"web-2","id":"f1"}`))
	f.Add([]byte(`{"op":"start","instance":"web-1","fault":{"id":"","endpoint":"x","percent":1,"duration_ns":1,"ends":1,"origin":"a"}}`))
	f.Add([]byte(`{"op":"stop","instance":"web 2","id":"f1"}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		m, err := decodeFaultMessage(payload, fuzzNow)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v does not match errMalformed", err)
			}
			return
		}
		if !validID(m.instance) || m.id == "" || len(m.id) > maxFaultIDLen {
			t.Fatalf("accepted %+v", m)
		}
		if m.stop {
			return
		}
		checkFaultEntry(t, m.entry)
		w := wireFaultOf(m.entry.f, m.entry.f.Origin, m.entry.ends)
		back := encodeJSON(wireFaultMessage{Op: "start", Instance: m.instance, Fault: &w})
		m2, err := decodeFaultMessage(back, fuzzNow)
		if err != nil || m2.entry != m.entry {
			t.Fatalf("round trip: %+v -> %s -> %+v %v", m.entry, back, m2.entry, err)
		}
	})
}

func checkFaultEntry(t *testing.T, e faultEntry) {
	t.Helper()
	f := e.f
	if f.ID == "" || len(f.ID) > maxFaultIDLen || core.ValidateEndpoint(f.Endpoint) != nil || !validID(f.Origin) ||
		e.ends <= 0 || e.ends > fuzzNow.Add(maxFaultAhead).UnixMilli() || f.Latency < 0 || f.LatencyMax < 0 || f.Duration < 0 || e.print == 0 {
		t.Fatalf("accepted %+v", e)
	}
}

// FuzzDecodeFault: no panic; an accepted entry agrees with its index.
func FuzzDecodeFault(f *testing.F) {
	f.Add("f1", "1760000060000", `{"id":"f1","endpoint":"GET /x","percent":50,"status":500,"duration_ns":60000000000,"ends":1760000060000,"origin":"web-1"}`)
	f.Add("f1", "1.76000006e12", `{"id":"f1","endpoint":"GET /x","percent":50,"duration_ns":1,"ends":1760000060000,"origin":"web-1"}`)
	f.Add("f1", "1760000060000", ``)
	f.Add("f1", "inf", `{"id":"f1"}`)
	f.Fuzz(func(t *testing.T, id, score, payload string) {
		e, err := decodeFault(faultRaw{id: id, score: score, payload: payload}, fuzzNow)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v does not match errMalformed", err)
			}
			return
		}
		checkFaultEntry(t, e)
		if e.f.ID != id {
			t.Fatalf("entry %q accepted with the ID %q", id, e.f.ID)
		}
	})
}

// FuzzParseRoundReply: no panic; what is accepted is within its bounds.
func FuzzParseRoundReply(f *testing.F) {
	f.Add(replyBytes([]any{1760000000, 5, []any{"a", "1760000000000", "b", "1759999999000"}, "17", 0,
		[]any{"f1", "1760000060000", "{}"}, 1}), 2)
	f.Add(replyBytes([]any{1760000000, 5, nil, "", 1, nil, 0}), 0)
	f.Add(replyBytes([]any{1760000000, 5, []any{"a b", "1"}, "?", 0, []any{}, 3}), 1)
	f.Fuzz(func(t *testing.T, data []byte, maxFaults int) {
		maxFaults = min(max(maxFaults, 0), 10_000)
		v, _ := replyFrom(data, 0)
		if a, ok := v.([]any); ok {
			for i, x := range a {
				if _, ok := x.(float64); ok {
					a[i] = nil // a nil reply: Lua's false
				}
			}
		}
		r, err := parseRoundReply(v, maxFaults)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v does not match errMalformed", err)
			}
			return
		}
		if len(r.members) > maxMembers || len(r.faults) > maxFaults || r.total < 0 || r.redisTime.Unix() < 1 {
			t.Fatalf("accepted %+v", r)
		}
		for _, m := range r.members {
			if !validID(m.id) || m.seen < 0 {
				t.Fatalf("accepted the instance %+v", m)
			}
		}
		if !r.faultsRead && len(r.faults) > 0 || !r.membersRead && len(r.members) > 0 {
			t.Fatalf("entries not read: %+v", r)
		}
	})
}
