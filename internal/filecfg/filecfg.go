// Package filecfg reads configuration files into Bulwark's config structs.
//
// A file (YAML or JSON) is parsed into a tree of maps, lists and scalars;
// ${NAME} is replaced from the environment in every string; then the tree
// is decoded into a struct by reflection, mapping each key to the exported
// field whose name it spells in snake_case (failure_threshold →
// FailureThreshold). Decoding is strict: an unknown key, a value of the
// wrong type or a bad duration is an error naming its path, such as
// endpoints."GET /users/{id}".breaker.failure_threshold. One set of Go
// structs thus describes both the code's configuration and the file's, and
// their validation stays in one place.
package filecfg

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// Error is one problem of a file, at a path within it.
type Error struct {
	Path string // such as `endpoints."GET /x".breaker.timeout`; empty for the whole file
	Msg  string
}

func (e *Error) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Parse reads data as YAML, or as JSON when name ends in ".json", into a
// tree of map[string]any, []any and scalars (string, bool, int64, float64).
func Parse(name string, data []byte) (any, error) {
	var tree any
	if strings.HasSuffix(strings.ToLower(name), ".json") {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&tree); err != nil {
			return nil, &Error{Msg: "not valid JSON: " + err.Error()}
		}
		if dec.More() {
			return nil, &Error{Msg: "not valid JSON: more than one value"}
		}
	} else {
		var n yaml.Node
		if err := yaml.Unmarshal(data, &n); err != nil {
			return nil, &Error{Msg: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
		}
		if len(n.Content) == 0 {
			return map[string]any{}, nil
		}
		var err error
		budget := maxNodes
		if tree, err = fromNode(n.Content[0], "", 0, &budget); err != nil {
			return nil, err
		}
	}
	return normalize(tree, "")
}

// maxNodes and maxDepth bound what a file may unfold into, so that an
// alias that refers to itself, or aliases that multiply, cannot take the
// process down.
const (
	maxNodes = 100_000
	maxDepth = 64
)

// fromNode turns a YAML node into the tree, refusing what a configuration
// has no use for (anchors are resolved; tags other than the core schema's
// are refused).
func fromNode(n *yaml.Node, path string, depth int, budget *int) (any, error) {
	*budget--
	if *budget < 0 || depth > maxDepth {
		return nil, &Error{Path: path, Msg: fmt.Sprintf("line %d: the document nests or repeats too much (aliases?)", n.Line)}
	}
	switch n.Kind {
	case yaml.AliasNode:
		return fromNode(n.Alias, path, depth+1, budget)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				return nil, &Error{Path: path, Msg: fmt.Sprintf("line %d: keys must be plain strings", k.Line)}
			}
			p := Join(path, k.Value)
			if _, dup := m[k.Value]; dup {
				return nil, &Error{Path: p, Msg: fmt.Sprintf("line %d: key given twice", k.Line)}
			}
			v, err := fromNode(n.Content[i+1], p, depth+1, budget)
			if err != nil {
				return nil, err
			}
			m[k.Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for i, c := range n.Content {
			v, err := fromNode(c, fmt.Sprintf("%s[%d]", path, i), depth+1, budget)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		return l, nil
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, nil
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				return nil, &Error{Path: path, Msg: fmt.Sprintf("line %d: %v", n.Line, err)}
			}
			return b, nil
		case "!!int", "!!float":
			return json.Number(n.Value), nil
		case "!!str":
			return n.Value, nil
		}
		return nil, &Error{Path: path, Msg: fmt.Sprintf("line %d: unsupported value of type %s", n.Line, n.ShortTag())}
	}
	return nil, &Error{Path: path, Msg: fmt.Sprintf("line %d: unsupported YAML", n.Line)}
}

// normalize turns json.Number leaves into int64 or float64.
func normalize(v any, path string) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			n, err := normalize(c, Join(path, k))
			if err != nil {
				return nil, err
			}
			x[k] = n
		}
	case []any:
		for i, c := range x {
			n, err := normalize(c, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			x[i] = n
		}
	case json.Number:
		s := strings.ReplaceAll(string(x), "_", "")
		if i, err := strconv.ParseInt(s, 0, 64); err == nil {
			return i, nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, &Error{Path: path, Msg: fmt.Sprintf("%s is not a usable number", x)}
		}
		return f, nil
	}
	return v, nil
}

var envRef = regexp.MustCompile(`\$\{([^}]*)\}`)

// Expand replaces ${NAME} in every string of tree with the environment
// variable NAME, looked up with lookup (os.LookupEnv when nil). A variable
// that is not set is an error, so that a secret is never silently empty;
// "$${" writes a literal "${".
func Expand(tree any, lookup func(string) (string, bool)) error {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	var errs []error
	var walk func(v any, path string) any
	walk = func(v any, path string) any {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				x[k] = walk(c, Join(path, k))
			}
		case []any:
			for i, c := range x {
				x[i] = walk(c, fmt.Sprintf("%s[%d]", path, i))
			}
		case string:
			const lit = "\x00literal\x00"
			s := strings.ReplaceAll(x, "$${", lit)
			s = envRef.ReplaceAllStringFunc(s, func(ref string) string {
				name := ref[2 : len(ref)-1]
				if !validEnvName(name) {
					errs = append(errs, &Error{Path: path, Msg: fmt.Sprintf("%q is not an environment variable name", name)})
					return ref
				}
				val, ok := lookup(name)
				if !ok {
					errs = append(errs, &Error{Path: path, Msg: fmt.Sprintf("environment variable %s is not set", name)})
				}
				return val
			})
			return strings.ReplaceAll(s, lit, "${")
		}
		return v
	}
	walk(tree, "")
	return errors.Join(errs...)
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r < unicode.MaxASCII && (unicode.IsLetter(r) || i > 0 && unicode.IsDigit(r))) {
			return false
		}
	}
	return true
}

// Join appends key to path, quoting a key that is not a plain word.
func Join(path, key string) string {
	k := key
	if !plainKey(key) {
		k = strconv.Quote(key)
	}
	if path == "" {
		return k
	}
	return path + "." + k
}

func plainKey(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r == '-' || r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r))) {
			return false
		}
	}
	return true
}

// SnakeCase spells a Go field name as a file key: FailureThreshold →
// failure_threshold, MaxOpenDuration → max_open_duration, TTL → ttl,
// InstanceID → instance_id; OTel, as OpenTelemetry spells itself, is one
// word: otel.
func SnakeCase(name string) string {
	var b strings.Builder
	rs := []rune(strings.ReplaceAll(name, "OTel", "Otel"))
	for i, r := range rs {
		if unicode.IsUpper(r) {
			if i > 0 && (unicode.IsLower(rs[i-1]) || unicode.IsDigit(rs[i-1]) || i+1 < len(rs) && unicode.IsLower(rs[i+1])) {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(r))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Merge returns base with over laid on top: maps merge key by key, any
// other value in over replaces base's.
func Merge(base, over map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		if bm, ok := out[k].(map[string]any); ok {
			if om, ok := v.(map[string]any); ok {
				out[k] = Merge(bm, om)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// Skip lists, per struct type, the fields a file may not set (those set by
// code: a name given by the Manager, a clock, a callback). A struct type it
// lists is one a configuration is made of, whatever its name (see
// Settable).
type Skip map[reflect.Type][]string

func (s Skip) has(t reflect.Type, field string) bool {
	for _, f := range s[t] {
		if f == field {
			return true
		}
	}
	return false
}

var durationType = reflect.TypeFor[time.Duration]()

// Settable reports whether a field of type t can come from a file: a
// scalar, a duration, a struct (or pointer to one) the configuration is made
// of, or a list or string-keyed map of those.
func Settable(t reflect.Type) bool { return Skip(nil).settable(t) }

func (s Skip) settable(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.String, reflect.Float32, reflect.Float64,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	case reflect.Struct:
		return s.configStruct(t)
	case reflect.Pointer:
		return t.Elem().Kind() == reflect.Struct && s.configStruct(t.Elem())
	case reflect.Slice:
		return s.settable(t.Elem())
	case reflect.Map:
		return t.Key().Kind() == reflect.String && s.settable(t.Elem())
	}
	return false
}

// configStruct reports whether t is one of the structs a configuration is
// made of: a type whose name ends in Config, any struct of the kit's own
// package, or one s lists.
func (s Skip) configStruct(t reflect.Type) bool {
	_, listed := s[t]
	return listed || strings.HasSuffix(t.Name(), "Config") || t.PkgPath() == "github.com/bulwark-go/bulwark"
}

// Decode fills dst, a pointer to a struct, from tree (a map from Parse),
// strictly. Every problem is reported, each an *Error with its path.
func Decode(tree any, dst any, skip Skip) error {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return errors.New("filecfg: Decode needs a pointer to a struct")
	}
	d := decoder{skip: skip}
	d.value(tree, v.Elem(), "")
	return errors.Join(d.errs...)
}

type decoder struct {
	skip Skip
	errs []error
}

func (d *decoder) fail(path, format string, args ...any) {
	d.errs = append(d.errs, &Error{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// fields maps the file keys of struct type t to field indexes, embedded
// structs flattened.
func (d *decoder) fields(t reflect.Type) (map[string][]int, []string) {
	out := map[string][]int{}
	var names []string
	var walk func(t reflect.Type, idx []int)
	walk = func(t reflect.Type, idx []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			at := append(append([]int(nil), idx...), i)
			if f.Anonymous && f.Type.Kind() == reflect.Struct {
				walk(f.Type, at)
				continue
			}
			if !d.skip.settable(f.Type) || d.skip.has(t, f.Name) {
				continue
			}
			k := SnakeCase(f.Name)
			out[k] = at
			names = append(names, k)
		}
	}
	walk(t, nil)
	sort.Strings(names)
	return out, names
}

func (d *decoder) value(tree any, v reflect.Value, path string) {
	if tree == nil {
		return // null leaves the zero value: the default
	}
	t := v.Type()
	switch {
	case t == durationType:
		s, ok := tree.(string)
		if !ok {
			d.fail(path, "want a duration such as \"15s\" or \"500ms\", got %s", describe(tree))
			return
		}
		dur, err := time.ParseDuration(s)
		if err != nil {
			d.fail(path, "%q is not a duration such as \"15s\" or \"500ms\"", s)
			return
		}
		v.SetInt(int64(dur))
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		p := reflect.New(t.Elem())
		d.value(tree, p.Elem(), path)
		v.Set(p)
	case reflect.Struct:
		m, ok := tree.(map[string]any)
		if !ok {
			d.fail(path, "want a section of keys, got %s", describe(tree))
			return
		}
		fields, names := d.fields(t)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			idx, ok := fields[k]
			if !ok {
				d.fail(Join(path, k), "unknown key (known here: %s)", strings.Join(names, ", "))
				continue
			}
			d.value(m[k], v.FieldByIndex(idx), Join(path, k))
		}
	case reflect.Map:
		m, ok := tree.(map[string]any)
		if !ok {
			d.fail(path, "want a section of keys, got %s", describe(tree))
			return
		}
		if v.IsNil() {
			v.Set(reflect.MakeMapWithSize(t, len(m)))
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			e := reflect.New(t.Elem()).Elem()
			d.value(m[k], e, Join(path, k))
			v.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), e)
		}
	case reflect.Slice:
		l, ok := tree.([]any)
		if !ok {
			d.fail(path, "want a list, got %s", describe(tree))
			return
		}
		s := reflect.MakeSlice(t, len(l), len(l))
		for i, x := range l {
			d.value(x, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.String:
		s, ok := tree.(string)
		if !ok {
			d.fail(path, "want a string, got %s", describe(tree))
			return
		}
		v.SetString(s)
	case reflect.Bool:
		b, ok := tree.(bool)
		if !ok {
			if s, isStr := tree.(string); isStr {
				if pb, err := strconv.ParseBool(s); err == nil {
					v.SetBool(pb)
					return
				}
			}
			d.fail(path, "want true or false, got %s", describe(tree))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := asInt(tree)
		if !ok || v.OverflowInt(n) {
			d.fail(path, "want a whole number, got %s", describe(tree))
			return
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := asInt(tree)
		if !ok || n < 0 || v.OverflowUint(uint64(n)) {
			d.fail(path, "want a whole number of 0 or more, got %s", describe(tree))
			return
		}
		v.SetUint(uint64(n))
	case reflect.Float32, reflect.Float64:
		f, ok := asFloat(tree)
		if !ok {
			d.fail(path, "want a number, got %s", describe(tree))
			return
		}
		v.SetFloat(f)
	default:
		d.fail(path, "cannot be set from a file")
	}
}

// asInt reads a whole number, also from a string (after ${NAME}
// expansion every scalar may be one).
func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<62 {
			return int64(x), true
		}
	case string:
		n, err := strconv.ParseInt(strings.ReplaceAll(strings.TrimSpace(x), "_", ""), 10, 64)
		return n, err == nil
	}
	return 0, false
}

func asFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		return f, err == nil && !math.IsInf(f, 0) && !math.IsNaN(f)
	}
	return 0, false
}

func describe(v any) string {
	switch x := v.(type) {
	case map[string]any:
		return "a section"
	case []any:
		return "a list"
	case string:
		return strconv.Quote(x)
	case bool:
		return strconv.FormatBool(x)
	}
	return fmt.Sprint(v)
}

// GoPath turns the path of a Go field, as a *core.ConfigError names it
// ("Endpoints[GET /x].Breaker.FailureThreshold"), into the file's
// (`endpoints."GET /x".breaker.failure_threshold`); a list's index stays
// one ("Faults.Experiments[0].Percent" is faults.experiments[0].percent).
func GoPath(goPath string) string {
	var out string
	for goPath != "" {
		seg := goPath
		rest := ""
		if i := strings.IndexAny(goPath, ".["); i >= 0 {
			seg, rest = goPath[:i], goPath[i:]
		}
		if seg != "" {
			out = Join(out, SnakeCase(seg))
		}
		switch {
		case strings.HasPrefix(rest, "["):
			end := strings.Index(rest, "]")
			if end < 0 {
				return Join(out, rest)
			}
			if key := rest[1:end]; isIndex(key) {
				out += rest[:end+1] // a list's element, as Decode names it
			} else {
				out = Join(out, key)
			}
			goPath = strings.TrimPrefix(rest[end+1:], ".")
		case strings.HasPrefix(rest, "."):
			goPath = rest[1:]
		default:
			goPath = ""
		}
	}
	return out
}

// isIndex reports whether s is a list index: digits only.
func isIndex(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// Encode turns a config struct (or a pointer to one) back into the tree a
// file would hold: the keys Decode accepts, durations as "15s", nil
// pointers and empty maps left out. Decode(Encode(v)) gives v again, for
// the fields a file can set.
func Encode(v any, skip Skip) map[string]any {
	d := decoder{skip: skip}
	out, _ := d.encode(reflect.ValueOf(v)).(map[string]any)
	return out
}

func (d *decoder) encode(v reflect.Value) any {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	t := v.Type()
	if t == durationType {
		return time.Duration(v.Int()).String()
	}
	switch t.Kind() {
	case reflect.Struct:
		fields, _ := d.fields(t)
		m := make(map[string]any, len(fields))
		for k, idx := range fields {
			f := v.FieldByIndex(idx)
			if f.Kind() == reflect.Pointer && f.IsNil() || f.Kind() == reflect.Map && f.Len() == 0 || f.Kind() == reflect.Slice && f.IsNil() {
				continue
			}
			m[k] = d.encode(f)
		}
		return m
	case reflect.Map:
		m := make(map[string]any, v.Len())
		for _, k := range v.MapKeys() {
			m[k.String()] = d.encode(v.MapIndex(k))
		}
		return m
	case reflect.Slice:
		l := make([]any, v.Len())
		for i := range l {
			l[i] = d.encode(v.Index(i))
		}
		return l
	case reflect.String:
		return v.String()
	case reflect.Bool:
		return v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return int64(v.Uint())
	case reflect.Float32, reflect.Float64:
		return v.Float()
	}
	return nil
}
