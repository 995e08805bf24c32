package endpointkey

import (
	"strconv"
	"strings"
	"testing"
)

func TestCache(t *testing.T) {
	c := NewCache()
	if k := c.Key("GET", ""); k != "" {
		t.Errorf("empty pattern: %q", k)
	}
	for range 2 {
		if k := c.Key("GET", "/users/:id"); k != "GET /users/:id" {
			t.Errorf("key %q", k)
		}
	}
	if k := c.Key("POST", "/users/:id"); k != "POST /users/:id" {
		t.Errorf("key %q", k)
	}
	if n := c.keys.Len(); n != 2 {
		t.Errorf("%d keys cached, want 2", n)
	}
	if n := testing.AllocsPerRun(100, func() { c.Key("GET", "/users/:id") }); n != 0 {
		t.Errorf("a cached key allocates %v times", n)
	}
	for i := range maxCached + 10 {
		p := "/p/" + strconv.Itoa(i)
		if k := c.Key("GET", p); k != "GET "+p {
			t.Fatalf("key %q", k)
		}
	}
	if n := c.keys.Len(); n != maxCached {
		t.Errorf("%d keys cached, want the bound %d", n, maxCached)
	}
}

// Client-chosen methods on a method-less route ("/x") all key as "OTHER"
// and must not fill the cache or pin their bytes.
func TestClientMethodNamesDoNotFillTheCache(t *testing.T) {
	c := NewCache()
	junk := strings.Repeat("A", 4<<10)
	for i := range 200 {
		if k := c.Key(junk+strconv.Itoa(i), "/x"); k != "OTHER /x" {
			t.Fatalf("key %q", k)
		}
	}
	if n := c.keys.Len(); n > 1 {
		t.Fatalf("one endpoint key (OTHER /x) holds %d cache entries", n)
	}
}

func TestWithMethod(t *testing.T) {
	for _, tc := range []struct{ method, pattern, want string }{
		{"GET", "/users/{id}", "GET /users/{id}"},
		{"", "/x", "GET /x"},
		{"POST", "GET /x", "GET /x"},
		{"BREW", "/pot", "OTHER /pot"},
		{"GET", "example.com/x", "GET example.com/x"},
		{"PUT", "", ""},
	} {
		if got := WithMethod(tc.method, tc.pattern); got != tc.want {
			t.Errorf("WithMethod(%q, %q) = %q, want %q", tc.method, tc.pattern, got, tc.want)
		}
	}
}
