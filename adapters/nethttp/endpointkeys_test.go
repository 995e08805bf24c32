package nethttp

import (
	"strconv"
	"testing"
)

func TestEndpointKeys(t *testing.T) {
	defer func(n int) { maxCachedKeys = n }(maxCachedKeys)
	maxCachedKeys = 64
	var c EndpointKeys
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
	if n := len(*c.keys.Load()); n != 2 {
		t.Errorf("%d keys cached, want 2", n)
	}
	if n := testing.AllocsPerRun(100, func() { c.Key("GET", "/users/:id") }); n != 0 {
		t.Errorf("a cached key allocates %v times", n)
	}
	for i := range maxCachedKeys + 10 {
		p := "/p/" + strconv.Itoa(i)
		if k := c.Key("GET", p); k != "GET "+p {
			t.Fatalf("key %q", k)
		}
	}
	if n := len(*c.keys.Load()); n != maxCachedKeys {
		t.Errorf("%d keys cached, want the bound %d", n, maxCachedKeys)
	}
}
