package store

import (
	"encoding/json"
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
	f.Add([]byte(`{{{`))
	f.Add([]byte(`{"endpoint":"api","version":1e3}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		name, cs, err := decodeMessage(payload, now)
		if err != nil {
			return
		}
		if !cs.State.Valid() || !cs.OldState.Valid() || cs.Version < 1 || cs.Version > maxVersion || !validID(cs.Origin) {
			t.Fatalf("accepted an invalid state: %q %+v", name, cs)
		}
		back, err := json.Marshal(wireMessage{
			Endpoint: name, Version: int64(cs.Version), State: cs.State.String(), OldState: cs.OldState.String(),
			OpenUntil: untilMillis(cs), Reason: cs.Reason, Origin: cs.Origin, Updated: cs.Updated.UnixMilli(),
		})
		if err != nil {
			t.Fatal(err)
		}
		name2, cs2, err := decodeMessage(back, now)
		if err != nil || name2 != name || cs2.Version != cs.Version || cs2.State != cs.State || !cs2.OpenUntil.Equal(cs.OpenUntil) {
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

// FuzzParseStateHash feeds arbitrary field/value lists (NUL-separated) to
// the state hash parser: no panic, and only valid states accepted.
func FuzzParseStateHash(f *testing.F) {
	now := time.Unix(1_760_000_000, 0)
	f.Add("version\x004\x00state\x00Open\x00old_state\x00Closed\x00open_until\x001760000060000\x00reason\x00x\x00origin\x00a\x00updated\x001760000000000")
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
		if !cs.State.Valid() || cs.Version < 1 || (cs.State == core.Open) == cs.OpenUntil.IsZero() {
			t.Fatalf("accepted an invalid state: %+v", cs)
		}
	})
}
