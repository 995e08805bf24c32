package nethttp

import (
	"strconv"
	"strings"
	"testing"
)

// Client-chosen methods on a method-less route ("/x") all key as "OTHER"
// and must not fill the cache or pin their bytes.
func TestEndpointKeysIgnoreClientMethodNames(t *testing.T) {
	var c EndpointKeys
	junk := strings.Repeat("A", 4<<10)
	for i := range 200 {
		if k := c.Key(junk+strconv.Itoa(i), "/x"); k != "OTHER /x" {
			t.Fatalf("key %q", k)
		}
	}
	m := *c.keys.Load()
	pinned := 0
	for k := range m {
		pinned += len(k[0])
	}
	if len(m) > 1 {
		t.Fatalf("one endpoint key (OTHER /x) holds %d cache entries pinning %d bytes of client-chosen methods", len(m), pinned)
	}
}
