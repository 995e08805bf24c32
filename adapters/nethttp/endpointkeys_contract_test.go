package nethttp

import (
	"strconv"
	"strings"
	"testing"
)

// Review: knownMethod folds non-standard methods into "OTHER" so that they
// cannot create endpoints, but EndpointKeys caches by the raw method: every
// distinct client-chosen method on a method-less route ("/x") adds a cache
// entry (copying the whole map under the mutex) and pins the method string,
// up to 4096 entries of up to MaxHeaderBytes each. Once full, every uncached
// legitimate key allocates and locks on every request.
func TestReviewEndpointKeysIgnoreClientMethodNames(t *testing.T) {
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
