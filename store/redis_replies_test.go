package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/bulwark-go/bulwark/events"
	"math"
	"strings"
	"testing"
	"time"
)

func message(fields map[string]any) []byte {
	var parts []string
	for k, v := range fields {
		switch v := v.(type) {
		case string:
			parts = append(parts, fmt.Sprintf("%q:%q", k, v))
		default:
			parts = append(parts, fmt.Sprintf("%q:%v", k, v))
		}
	}
	return []byte("{" + strings.Join(parts, ",") + "}")
}

func TestDecodeMessage(t *testing.T) {
	now := time.Now()
	until := now.Add(time.Minute).UnixMilli()
	good := func() map[string]any {
		return map[string]any{
			"endpoint": "api", "version": 7, "state": "Open", "old_state": "Closed",
			"open_until": until, "reason": "five failures", "origin": "inst-1", "updated": now.UnixMilli(),
		}
	}
	name, cs, err := decodeMessage(message(good()), now)
	if err != nil || name != "api" || cs.Version != 7 || cs.State != events.Open || cs.OpenUntil.UnixMilli() != until || cs.Origin != "inst-1" {
		t.Fatalf("good message: %q %+v %v", name, cs, err)
	}
	// What the Lua encoder writes: "/" escaped.
	if _, _, err := decodeMessage([]byte(`{"endpoint":"a\/b","version":1,"state":"Closed","old_state":"HalfOpen","open_until":0,"reason":"","origin":"x","updated":5}`), now); err != nil {
		t.Errorf("escaped slash: %v", err)
	}
	cases := map[string]func(m map[string]any){
		"unknown field":     func(m map[string]any) { m["extra"] = 1 },
		"zero version":      func(m map[string]any) { m["version"] = 0 },
		"huge version":      func(m map[string]any) { m["version"] = int64(1) << 60 },
		"float version":     func(m map[string]any) { m["version"] = 1.5 },
		"string version":    func(m map[string]any) { m["version"] = "7" },
		"bad state":         func(m map[string]any) { m["state"] = "Sideways" },
		"bad old state":     func(m map[string]any) { m["old_state"] = "" },
		"open forever":      func(m map[string]any) { m["open_until"] = now.Add(30 * 24 * time.Hour).UnixMilli() },
		"open without time": func(m map[string]any) { m["open_until"] = 0 },
		"bad endpoint":      func(m map[string]any) { m["endpoint"] = "" },
		"bad origin":        func(m map[string]any) { m["origin"] = "a b" },
		"long reason":       func(m map[string]any) { m["reason"] = strings.Repeat("x", maxReasonLen+1) },
		"no updated":        func(m map[string]any) { delete(m, "updated") },
		"negative until":    func(m map[string]any) { m["state"] = "Closed"; m["open_until"] = -1 },
	}
	for name, change := range cases {
		m := good()
		change(m)
		if _, _, err := decodeMessage(message(m), now); !errors.Is(err, errMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A component's hold carries its owner and lease.
	hold := now.Add(90 * time.Second).UnixMilli()
	held := func() map[string]any {
		m := good()
		m["state"], m["open_until"], m["held_by"], m["hold_until"] = "ForcedOpen", 0, "health ping", hold
		return m
	}
	if _, cs, err := decodeMessage(message(held()), now); err != nil || cs.HeldBy != "health ping" || cs.HoldUntil.UnixMilli() != hold {
		t.Fatalf("held message: %+v %v", cs, err)
	}
	for name, change := range map[string]func(m map[string]any){
		"held, not forced":   func(m map[string]any) { m["state"] = "HalfOpen" },
		"owner without end":  func(m map[string]any) { delete(m, "hold_until") },
		"end without owner":  func(m map[string]any) { delete(m, "held_by") },
		"negative end":       func(m map[string]any) { m["hold_until"] = -1 },
		"end far ahead":      func(m map[string]any) { m["hold_until"] = now.Add(maxHoldAhead + time.Hour).UnixMilli() },
		"long owner":         func(m map[string]any) { m["held_by"] = strings.Repeat("x", maxOwnerLen+1) },
		"owner not a string": func(m map[string]any) { m["held_by"] = 7 },
	} {
		m := held()
		change(m)
		if _, cs, err := decodeMessage(message(m), now); !errors.Is(err, errMalformed) {
			t.Errorf("%s: accepted as %+v (%v)", name, cs, err)
		}
	}
	for _, raw := range []string{"", "null", "[]", `{"endpoint":"api"} x`, strings.Repeat(" ", maxMessageLen+1)} {
		if _, _, err := decodeMessage([]byte(raw), now); !errors.Is(err, errMalformed) {
			t.Errorf("%q: %v", raw, err)
		}
	}
}

func TestParseStateHash(t *testing.T) {
	now := time.Now()
	pairs := func(kv ...string) []any {
		out := make([]any, len(kv))
		for i, s := range kv {
			out[i] = s
		}
		return out
	}
	good := []string{"version", "4", "state", "HalfOpen", "old_state", "Open", "open_until", "0",
		"reason", "open timeout elapsed", "origin", "b", "updated", fmt.Sprint(now.UnixMilli()), "window_epoch", "2"}
	cs, present, err := parseStateHash(pairs(good...), now)
	if err != nil || !present || cs.Version != 4 || cs.State != events.HalfOpen || !cs.OpenUntil.IsZero() {
		t.Fatalf("good hash: %+v %v %v", cs, present, err)
	}
	if _, present, err := parseStateHash(nil, now); present || err != nil {
		t.Errorf("empty hash: %v %v", present, err)
	}
	bad := [][]any{
		pairs("version"),
		pairs("version", "x"),
		pairs("_type", "string"),
		{"version", 4},
		pairs(good[:len(good)-4]...), // no updated
		pairs(append([]string{"version", "-1"}, good[2:]...)...),
	}
	for i, h := range bad {
		if _, present, err := parseStateHash(h, now); !present || !errors.Is(err, errMalformed) {
			t.Errorf("bad hash %d: %v %v", i, present, err)
		}
	}

	// held_by and hold_until: a component's hold; empty (or absent, as a
	// hash written before holds were shared has them) for anything else.
	hold := fmt.Sprint(now.Add(time.Minute).UnixMilli())
	heldHash := func(kv ...string) []any {
		h := []string{"version", "5", "state", "ForcedOpen", "old_state", "Closed", "open_until", "0",
			"held_by", "health ping", "hold_until", hold, "reason", "held by health ping: down", "origin", "b",
			"updated", fmt.Sprint(now.UnixMilli())}
		for i := 0; i < len(kv); i += 2 {
			for j := 0; j < len(h); j += 2 {
				if h[j] == kv[i] {
					h[j+1] = kv[i+1]
				}
			}
		}
		return pairs(h...)
	}
	cs, _, err = parseStateHash(heldHash(), now)
	if err != nil || cs.HeldBy != "health ping" || fmt.Sprint(cs.HoldUntil.UnixMilli()) != hold {
		t.Fatalf("held hash: %+v %v", cs, err)
	}
	for _, kv := range [][]string{{"held_by", "", "hold_until", "0"}, {"held_by", "", "hold_until", ""}} {
		if cs, _, err := parseStateHash(heldHash(kv...), now); err != nil || cs.HeldBy != "" || !cs.HoldUntil.IsZero() {
			t.Errorf("operator's hold %v: %+v %v", kv, cs, err)
		}
	}
	for name, kv := range map[string][]string{
		"held, not forced":  {"state", "Closed"},
		"owner without end": {"hold_until", "0"},
		"end without owner": {"held_by", ""},
		"end not a number":  {"hold_until", "soon"},
		"negative end":      {"hold_until", "-5"},
		"end far ahead":     {"hold_until", fmt.Sprint(now.Add(maxHoldAhead + time.Hour).UnixMilli())},
		"long owner":        {"held_by", strings.Repeat("x", maxOwnerLen+1)},
		"bad utf8 owner":    {"held_by", "\xff"},
	} {
		if cs, present, err := parseStateHash(heldHash(kv...), now); !present || !errors.Is(err, errMalformed) {
			t.Errorf("%s: accepted as %+v (%v)", name, cs, err)
		}
	}
}

// stateHash is a valid state hash as the scripts return it.
func stateHash(now time.Time) []any {
	return []any{"version", "4", "state", "Open", "old_state", "Closed", "open_until", fmt.Sprint(now.Add(time.Minute).UnixMilli()),
		"reason", "five failures", "origin", "b", "updated", fmt.Sprint(now.UnixMilli())}
}

func TestParseCASReply(t *testing.T) {
	now := time.Now()
	ms := now.UnixMilli()
	won, err := parseCASReply([]any{int64(1), int64(9), "HalfOpen", ms, int64(2)}, 3, now)
	if err != nil || !won.won || won.version != 9 || won.old != events.HalfOpen || won.claimed != 2 {
		t.Fatalf("winner: %+v %v", won, err)
	}
	lost, err := parseCASReply([]any{int64(0), stateHash(now), int64(4)}, 0, now)
	if err != nil || lost.won || lost.version != 4 || !lost.cur.present || lost.cur.cs.State != events.Open || lost.cur.err != nil {
		t.Fatalf("loser: %+v %v", lost, err)
	}
	// A loser's unreadable hash is not a bad reply: the proposal replaces it.
	lost, err = parseCASReply([]any{int64(0), []any{"_type", "string"}, int64(0)}, 0, now)
	if err != nil || lost.cur.present || !errors.Is(lost.cur.err, errMalformed) {
		t.Fatalf("loser of a bad hash: %+v %v", lost, err)
	}
	if lost, err := parseCASReply([]any{int64(0), []any{}, int64(0)}, 0, now); err != nil || lost.cur.present || lost.cur.err != nil {
		t.Fatalf("loser of no state: %+v %v", lost, err)
	}
	for name, r := range map[string]any{
		"not an array":        "OK",
		"empty":               []any{},
		"bad flag":            []any{int64(2), int64(9), "Open", ms, int64(0)},
		"won, short":          []any{int64(1), int64(9), "Open", ms},
		"won, version 0":      []any{int64(1), int64(0), "Open", ms, int64(0)},
		"won, huge version":   []any{int64(1), int64(1) << 60, "Open", ms, int64(0)},
		"won, version string": []any{int64(1), "9", "Open", ms, int64(0)},
		"won, bad old state":  []any{int64(1), int64(9), "Sideways", ms, int64(0)},
		"won, old state int":  []any{int64(1), int64(9), int64(1), ms, int64(0)},
		"won, no time":        []any{int64(1), int64(9), "Open", int64(0), int64(0)},
		"won, future time":    []any{int64(1), int64(9), "Open", now.Add(30 * 24 * time.Hour).UnixMilli(), int64(0)},
		"won, over-claimed":   []any{int64(1), int64(9), "Closed", ms, int64(4)},
		"won, negative claim": []any{int64(1), int64(9), "Closed", ms, int64(-1)},
		"lost, hash string":   []any{int64(0), "version 4", int64(4)},
		"lost, version -1":    []any{int64(0), []any{}, int64(-1)},
		"lost, long":          []any{int64(0), []any{}, int64(4), int64(1)},
		"flag as string":      []any{"1", int64(9), "Open", ms, int64(0)},
	} {
		if r, err := parseCASReply(r, 3, now); !errors.Is(err, errMalformed) {
			t.Errorf("%s: accepted as %+v (%v)", name, r, err)
		}
	}
}

// packedPush is a push's full reply (kind 2) as syncScript packs it.
func packedPush(i int, idx int64, window, added, prev counts3, prevIdx float64, removed uint32) string {
	b := binary.LittleEndian.AppendUint32(nil, uint32(i))
	b = append(b, 2)
	b = appendF64(b, idx, window.total, window.failed, window.slow)
	for _, v := range []int64{added.total, added.failed, added.slow} {
		b = binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	b = appendF64(b, prev.total, prev.failed, prev.slow)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(prevIdx))
	return string(binary.LittleEndian.AppendUint32(b, removed))
}

// packedConfirmed is a push's short reply (kind 1).
func packedConfirmed(i int, idx int64, window counts3) string {
	b := append(binary.LittleEndian.AppendUint32(nil, uint32(i)), 1)
	return string(appendF64(b, idx, window.total, window.failed, window.slow))
}

// packedOlder is the reply to a push whose counts belong to an older epoch.
func packedOlder(i int, epoch int64) string {
	return string(appendF64(append(binary.LittleEndian.AppendUint32(nil, uint32(i)), 0), epoch))
}

func TestParseSyncBatch(t *testing.T) {
	now := time.Now()
	sec, usec := now.Unix(), int64(now.Nanosecond()/1000)
	names := []string{"a", "b", "c", "d"}
	pushed := []bool{true, false, true, false}
	pa := packedPush(1, 1760000000, counts3{24, 9, 1}, counts3{2, 1, 0}, counts3{40, 2, 0}, 1759999999, 0)
	pc := packedPush(3, 1760000000, counts3{24, 9, 1}, counts3{2, 1, 0}, counts3{}, -1, 2)
	settings := []any{"7", `{"a":1}`, "web-1", fmt.Sprint(now.UnixMilli())}
	v := []any{sec, usec, nil, pa,
		[]any{int64(2), stateHash(now), settings, nil},
		[]any{int64(3), nil, []any{"_type", "string"}, pc},
	}
	r, err := parseSyncBatch(v, names, pushed)
	if err != nil {
		t.Fatal(err)
	}
	if r2, err := parseSyncBatch([]any{sec, usec, "17"}, names, []bool{false, false, false, false}); err != nil || r2.changes != "17" {
		t.Errorf("counter: %+v %v", r2, err)
	}
	if !r.redisTime.Equal(time.Unix(sec, usec*1000)) {
		t.Errorf("Redis time %v", r.redisTime)
	}
	a, b, c, d := r.items[0], r.items[1], r.items[2], r.items[3]
	if a.changed || a.settings != nil || a.push == nil || !a.push.pushed || a.push.idx != 1760000000 ||
		a.push.window != (counts3{24, 9, 1}) || a.push.added != (counts3{2, 1, 0}) ||
		a.push.prev == nil || *a.push.prev != (prevEntry{cum: counts3{40, 2, 0}, idx: 1759999999}) {
		t.Errorf("a: %+v %+v", a, a.push)
	}
	if !b.changed || !b.state.present || b.state.cs.Version != 4 || b.settings == nil || b.settings.Version != 7 || b.push != nil || b.pushErr != nil {
		t.Errorf("b: %+v", b)
	}
	if !errors.Is(c.setErr, errMalformed) || c.push == nil || c.push.prev != nil || c.push.removed != 2 {
		t.Errorf("c: %+v %+v", c, c.push)
	}
	if d.changed || d.settings != nil || d.push != nil {
		t.Errorf("d: %+v", d)
	}
	// A push the script did not answer is that endpoint's error.
	r, err = parseSyncBatch([]any{sec, usec, nil}, names, pushed)
	if err != nil || !errors.Is(r.items[0].pushErr, errMalformed) || r.items[1].pushErr != nil {
		t.Errorf("unanswered push: %+v %v", r.items, err)
	}
	// The short reply of a push onto what Redis had confirmed.
	r, err = parseSyncBatch([]any{sec, usec, nil, packedConfirmed(1, 77, counts3{5, 2, 1})}, names[:1], pushed[:1])
	if err != nil || r.items[0].push == nil || !r.items[0].push.confirmed || r.items[0].push.idx != 77 || r.items[0].push.window != (counts3{5, 2, 1}) {
		t.Errorf("confirmed: %+v %v", r.items[0].push, err)
	}
	// Not pushed: an older epoch.
	r, err = parseSyncBatch([]any{sec, usec, nil, packedOlder(1, 9)}, names[:1], pushed[:1])
	if err != nil || r.items[0].push == nil || r.items[0].push.pushed || r.items[0].push.epoch != 9 {
		t.Errorf("older epoch: %+v %v", r.items[0], err)
	}
	for name, v := range map[string]any{
		"not an array":       int64(3),
		"no time":            []any{},
		"no counter":         []any{sec, usec},
		"counter a number":   []any{sec, usec, int64(3)},
		"counter not digits": []any{sec, usec, "x1"},
		"time as string":     []any{"1", usec},
		"bad µs":             []any{sec, int64(1e6)},
		"item a number":      []any{sec, usec, nil, int64(1)},
		"item short string":  []any{sec, usec, nil, "abc"},
		"item short":         []any{sec, usec, nil, []any{int64(1), nil, nil}},
		"index 0":            []any{sec, usec, nil, []any{int64(0), nil, nil, nil}},
		"index past":         []any{sec, usec, nil, []any{int64(5), nil, nil, nil}},
		"packed index past":  []any{sec, usec, nil, packedPush(9, 1, counts3{}, counts3{}, counts3{}, -1, 0)},
		"index repeated":     []any{sec, usec, nil, pa, pa},
		"state as string":    []any{sec, usec, nil, []any{int64(2), "x", nil, nil}},
		"push not asked":     []any{sec, usec, nil, packedPush(2, 1, counts3{}, counts3{}, counts3{}, -1, 0)},
		"too many items":     []any{sec, usec, nil, []any{int64(1)}, []any{int64(2)}, []any{int64(3)}, []any{int64(4)}, []any{int64(5)}},
	} {
		if r, err := parseSyncBatch(v, names, pushed); !errors.Is(err, errMalformed) {
			t.Errorf("%s: accepted as %+v (%v)", name, r, err)
		}
	}
	set := func(p string, off int, f float64) string {
		b := []byte(p)
		binary.LittleEndian.PutUint64(b[off:], math.Float64bits(f))
		return string(b)
	}
	good := packedPush(3, 1760000000, counts3{24, 9, 1}, counts3{2, 1, 0}, counts3{40, 2, 0}, 1759999999, 0)
	for name, p := range map[string]any{
		"kind 3":           good[:4] + "\x03" + good[5:],
		"kind 1, long":     good[:4] + "\x01" + good[5:],
		"confirmed short":  packedConfirmed(3, 1, counts3{})[:36],
		"confirmed failed": packedConfirmed(3, 1, counts3{1, 2, 0}),
		"short":            good[:72],
		"long":             good + "x",
		"for another":      packedPush(1, 1, counts3{}, counts3{}, counts3{}, -1, 0),
		"not a string":     int64(5),
		"window failed":    packedPush(3, 1, counts3{1, 2, 0}, counts3{}, counts3{}, -1, 0),
		"window slow":      packedPush(3, 1, counts3{1, 0, 2}, counts3{}, counts3{}, -1, 0),
		"added failed":     packedPush(3, 1, counts3{5, 0, 0}, counts3{1, 2, 0}, counts3{}, -1, 0),
		"prev failed":      packedPush(3, 1, counts3{}, counts3{}, counts3{1, 2, 0}, 5, 0),
		"bucket NaN":       set(good, 5, math.NaN()),
		"bucket fraction":  set(good, 5, 1.5),
		"bucket negative":  set(good, 5, -1),
		"prev huge":        set(good, 37, 1<<54),
		"prev idx -2":      set(good, 61, -2),
		"older NaN":        set(packedOlder(3, 1), 5, math.NaN()),
		"older short":      packedOlder(3, 1)[:12],
	} {
		v := []any{sec, usec, nil, []any{int64(3), nil, nil, p}}
		if r, err := parseSyncBatch(v, names, pushed); err != nil || !errors.Is(r.items[2].pushErr, errMalformed) {
			t.Errorf("%s: accepted as %+v (%v)", name, r.items[2].push, err)
		}
	}
}

func TestParseClaimReply(t *testing.T) {
	if n, err := parseClaimReply(int64(2), 3); err != nil || n != 2 {
		t.Fatalf("%d %v", n, err)
	}
	for _, v := range []any{int64(4), int64(-1), "2", nil, []any{int64(1)}} {
		if n, err := parseClaimReply(v, 3); !errors.Is(err, errMalformed) {
			t.Errorf("%#v accepted as %d (%v)", v, n, err)
		}
	}
}

func TestDecodeSettingsMessage(t *testing.T) {
	now := time.Now()
	good := func() map[string]any {
		return map[string]any{"endpoint": "api", "version": 3, "instance": "web-1", "at": now.UnixMilli(), "settings": `{"a":1}`}
	}
	o, err := decodeSettingsMessage(message(good()), now)
	if err != nil || o.Endpoint != "api" || o.Version != 3 || o.Instance != "web-1" || string(o.Settings) != `{"a":1}` || o.At.UnixMilli() != now.UnixMilli() {
		t.Fatalf("good message: %+v %v", o, err)
	}
	m := good()
	m["settings"] = ""
	if o, err := decodeSettingsMessage(message(m), now); err != nil || o.Settings != nil {
		t.Fatalf("removal: %+v %v", o, err)
	}
	for name, change := range map[string]func(m map[string]any){
		"unknown field":  func(m map[string]any) { m["extra"] = 1 },
		"zero version":   func(m map[string]any) { m["version"] = 0 },
		"huge version":   func(m map[string]any) { m["version"] = int64(1) << 60 },
		"string version": func(m map[string]any) { m["version"] = "3" },
		"bad endpoint":   func(m map[string]any) { m["endpoint"] = "" },
		"bad instance":   func(m map[string]any) { m["instance"] = "a b" },
		"no time":        func(m map[string]any) { delete(m, "at") },
		"future time":    func(m map[string]any) { m["at"] = now.Add(30 * 24 * time.Hour).UnixMilli() },
		"not json":       func(m map[string]any) { m["settings"] = "{oops" },
		"two documents":  func(m map[string]any) { m["settings"] = "1 2" },
		"settings a map": func(m map[string]any) { m["settings"] = map[string]any{} },
	} {
		m := good()
		change(m)
		if o, err := decodeSettingsMessage(message(m), now); !errors.Is(err, errMalformed) {
			t.Errorf("%s: accepted as %+v (%v)", name, o, err)
		}
	}
	for _, raw := range []string{"", "null", "[]", `{"endpoint":"api"} x`, strings.Repeat(" ", maxSettingsMessageLen+1)} {
		if _, err := decodeSettingsMessage([]byte(raw), now); !errors.Is(err, errMalformed) {
			t.Errorf("%q: %v", raw, err)
		}
	}
}

func TestParseSettingsHash(t *testing.T) {
	now := time.Now()
	ms := fmt.Sprint(now.UnixMilli())
	o, ok, err := parseSettingsHash("api", []any{"7", `{"a":1}`, "b", ms}, now)
	if err != nil || !ok || o.Version != 7 || string(o.Settings) != `{"a":1}` || o.Instance != "b" {
		t.Fatalf("good hash: %+v %v %v", o, ok, err)
	}
	if o, ok, err := parseSettingsHash("api", []any{"8", "", "b", ms}, now); err != nil || !ok || o.Settings != nil {
		t.Fatalf("removed: %+v %v %v", o, ok, err)
	}
	if _, ok, err := parseSettingsHash("api", []any{nil, nil, nil, nil}, now); ok || err != nil {
		t.Fatalf("absent: %v %v", ok, err)
	}
	for name, vals := range map[string][]any{
		"missing field":   {"7", nil, "b", ms},
		"short":           {"7", "{}", "b"},
		"bad version":     {"7x", "{}", "b", ms},
		"version 0":       {"0", "{}", "b", ms},
		"bad instance":    {"7", "{}", "", ms},
		"bad time":        {"7", "{}", "b", "soon"},
		"not json":        {"7", "{", "b", ms},
		"not a string":    {int64(7), "{}", "b", ms},
		"too long a doc":  {"7", `"` + strings.Repeat("x", maxSettingsLen) + `"`, "b", ms},
		"negative time":   {"7", "{}", "b", "-1"},
		"version too big": {fmt.Sprint(int64(maxVersion) + 1), "{}", "b", ms},
	} {
		if o, _, err := parseSettingsHash("api", vals, now); !errors.Is(err, errMalformed) {
			t.Errorf("%s: accepted as %+v (%v)", name, o, err)
		}
	}
}
