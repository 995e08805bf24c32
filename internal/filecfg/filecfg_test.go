package filecfg

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

type innerConfig struct {
	FailureThreshold int
	Timeout          time.Duration
	Rate             float64
	Name             string // skipped below: set by code
}

type outerConfig struct {
	Enabled   bool
	Inner     *innerConfig
	Endpoints map[string]innerConfig
	Origins   []string
	Hook      func() // never settable
}

var skip = Skip{reflect.TypeFor[innerConfig](): {"Name"}}

func decode(t *testing.T, name, src string, env map[string]string) (outerConfig, error) {
	t.Helper()
	tree, err := Parse(name, []byte(src))
	if err != nil {
		return outerConfig{}, err
	}
	if err := Expand(tree, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		return outerConfig{}, err
	}
	var c outerConfig
	return c, Decode(tree, &c, skip)
}

func TestDecodeYAMLAndJSONAlike(t *testing.T) {
	yml := `
enabled: true
inner: {failure_threshold: 3, timeout: 15s, rate: 50}
endpoints:
  "GET /users/{id}": {timeout: 500ms}
origins: [a.example.com, "${HOST}"]
`
	js := `{"enabled": true, "inner": {"failure_threshold": 3, "timeout": "15s", "rate": 50},
 "endpoints": {"GET /users/{id}": {"timeout": "500ms"}}, "origins": ["a.example.com", "${HOST}"]}`
	env := map[string]string{"HOST": "b.example.com"}
	want := outerConfig{
		Enabled:   true,
		Inner:     &innerConfig{FailureThreshold: 3, Timeout: 15 * time.Second, Rate: 50},
		Endpoints: map[string]innerConfig{"GET /users/{id}": {Timeout: 500 * time.Millisecond}},
		Origins:   []string{"a.example.com", "b.example.com"},
	}
	for name, src := range map[string]string{"c.yaml": yml, "c.json": js} {
		got, err := decode(t, name, src, env)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %+v, want %+v", name, got, want)
		}
	}
}

func TestDecodeErrorsNameTheirPath(t *testing.T) {
	for _, tc := range []struct {
		name, src, path, msg string
	}{
		{"wrong type", `inner: {failure_threshold: "many"}`, "inner.failure_threshold", "whole number"},
		{"bad duration", `inner: {timeout: 15}`, "inner.timeout", "duration"},
		{"bad duration text", `inner: {timeout: soon}`, "inner.timeout", "not a duration"},
		{"unknown key", `inner: {failure_treshold: 3}`, "inner.failure_treshold", "unknown key"},
		{"skipped field", `inner: {name: x}`, "inner.name", "unknown key"},
		{"func field", `hook: x`, "hook", "unknown key"},
		{"quoted map key", `endpoints: {"GET /x": {rate: fast}}`, `endpoints."GET /x".rate`, "number"},
		{"missing env", `origins: ["${NOPE}"]`, "origins[0]", "NOPE is not set"},
		{"duplicate key", "enabled: true\nenabled: false", "enabled", "twice"},
	} {
		_, err := decode(t, "c.yaml", tc.src, nil)
		var fe *Error
		if !errors.As(err, &fe) || fe.Path != tc.path || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: err = %v, want path %s and %q", tc.name, err, tc.path, tc.msg)
		}
	}
}

func TestDecodeReportsEveryProblem(t *testing.T) {
	_, err := decode(t, "c.yaml", `inner: {failure_threshold: x, timeout: y, rate: z}`, nil)
	if n := strings.Count(err.Error(), "\n") + 1; n != 3 {
		t.Errorf("want 3 problems, got %d: %v", n, err)
	}
}

func TestSnakeCaseAndGoPath(t *testing.T) {
	for in, want := range map[string]string{
		"FailureThreshold": "failure_threshold", "TTL": "ttl", "InstanceID": "instance_id", "OTel": "otel", "OTelConfig": "otel_config",
		"SLO": "slo", "MaxOpenDuration": "max_open_duration", "HTTPProbe": "http_probe",
	} {
		if got := SnakeCase(in); got != want {
			t.Errorf("SnakeCase(%s) = %s, want %s", in, got, want)
		}
	}
	if got := GoPath("Endpoints[GET /users/{id}].Breaker.FailureThreshold"); got != `endpoints."GET /users/{id}".breaker.failure_threshold` {
		t.Errorf("GoPath = %s", got)
	}
	if got := GoPath("Faults.Experiments[12].Percent"); got != "faults.experiments[12].percent" {
		t.Errorf("GoPath of a list element = %s", got)
	}
}

// A struct whose name does not say Config is decoded when the Skip lists
// it, with the fields it names left out.
func TestDecodeStructsTheSkipLists(t *testing.T) {
	type limits struct{ Max int }
	type item struct {
		Name  string
		Count int
		Set   int // set by code
	}
	type cfg struct {
		Limits *limits
		Items  []item
	}
	tree, err := Parse("c.yaml", []byte("limits: {max: 3}\nitems: [{name: a, count: 1}, {name: b}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	var got cfg
	sk := Skip{reflect.TypeFor[limits](): nil, reflect.TypeFor[item](): {"Set"}}
	if err := Decode(tree, &got, sk); err != nil {
		t.Fatal(err)
	}
	if got.Limits == nil || got.Limits.Max != 3 || len(got.Items) != 2 || got.Items[0] != (item{Name: "a", Count: 1}) {
		t.Fatalf("got %+v", got)
	}
	tree, _ = Parse("c.yaml", []byte("items: [{set: 1}]\n"))
	var e *Error
	if err := Decode(tree, &got, sk); !errors.As(err, &e) || e.Path != "items[0].set" {
		t.Fatalf("a skipped field: %v", err)
	}
	tree, _ = Parse("c.yaml", []byte("limits: {max: 3}\n"))
	if err := Decode(tree, &got, nil); !errors.As(err, &e) || e.Path != "limits" {
		t.Fatalf("a struct the Skip does not list: %v", err)
	}
}

func TestMerge(t *testing.T) {
	got := Merge(map[string]any{"a": map[string]any{"x": 1, "y": 2}, "b": 1}, map[string]any{"a": map[string]any{"y": 3}, "c": 4})
	want := map[string]any{"a": map[string]any{"x": 1, "y": 3}, "b": 1, "c": 4}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Merge = %v", got)
	}
}

func FuzzParseAndDecode(f *testing.F) {
	f.Add("c.yaml", "enabled: true\ninner: {timeout: 1s}")
	f.Add("c.json", `{"endpoints": {"x": {"rate": 1e3}}}`)
	f.Add("c.yaml", "&a {b: *a}")
	f.Fuzz(func(t *testing.T, name, src string) {
		tree, err := Parse(name, []byte(src))
		if err != nil {
			return
		}
		_ = Expand(tree, func(string) (string, bool) { return "", false })
		var c outerConfig
		_ = Decode(tree, &c, skip)
	})
}

func TestEncodeRoundTrips(t *testing.T) {
	in := outerConfig{
		Enabled:   true,
		Inner:     &innerConfig{FailureThreshold: 3, Timeout: 15 * time.Second, Rate: 0.5, Name: "not in files"},
		Endpoints: map[string]innerConfig{"GET /x": {Timeout: time.Millisecond}},
		Origins:   []string{"a"},
	}
	tree := Encode(&in, skip)
	if _, ok := tree["inner"].(map[string]any)["name"]; ok {
		t.Fatal("a skipped field was encoded")
	}
	var out outerConfig
	if err := Decode(tree, &out, skip); err != nil {
		t.Fatal(err)
	}
	in.Inner.Name = ""
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip: %+v != %+v", out, in)
	}
}
