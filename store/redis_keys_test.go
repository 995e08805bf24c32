package store

import (
	"strings"
	"testing"
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

func TestTruncateUTF8(t *testing.T) {
	if got := truncateUTF8("héllo", 2); got != "h" {
		t.Errorf("got %q", got)
	}
	if got := truncateUTF8("abc", 5); got != "abc" {
		t.Errorf("got %q", got)
	}
}
