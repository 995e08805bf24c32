package store

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/core"
)

func TestEscapeEndpointIsInjectiveAndKeepsTheTag(t *testing.T) {
	names := []string{"api", "GET /users/{id}", "a:b", "a%3Ab", "}{", "héllo", "a b", "a/b", "%", "%25"}
	seen := map[string]string{}
	for _, n := range names {
		k := newRedisKeys("bulwark", n)
		tag := k.state[:strings.IndexByte(k.state, '}')+1]
		if !strings.HasPrefix(k.window, tag) || !strings.HasPrefix(k.probes, tag) {
			t.Errorf("%q: keys %+v do not share the tag %s", n, k, tag)
		}
		if strings.Count(tag, "{") != 1 || strings.Count(tag, "}") != 1 || strings.Count(tag, ":") != 1 {
			t.Errorf("%q: tag %s", n, tag)
		}
		if other, dup := seen[k.state]; dup {
			t.Errorf("%q and %q share %s", n, other, k.state)
		}
		seen[k.state] = n
	}
	if got := escapeEndpoint("GET /users/{id}"); got != "GET%20/users/%7Bid%7D" {
		t.Errorf("escape: %s", got)
	}
}

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
	if err != nil || name != "api" || cs.Version != 7 || cs.State != core.Open || cs.OpenUntil.UnixMilli() != until || cs.Origin != "inst-1" {
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
	if err != nil || !present || cs.Version != 4 || cs.State != core.HalfOpen || !cs.OpenUntil.IsZero() {
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
}

func TestTruncateUTF8(t *testing.T) {
	if got := truncateUTF8("héllo", 2); got != "h" {
		t.Errorf("got %q", got)
	}
	if got := truncateUTF8("abc", 5); got != "abc" {
		t.Errorf("got %q", got)
	}
}
