package bulwark

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/internal/filecfg"
)

// LoadConfig reads a configuration file: YAML, or JSON when its name ends
// in ".json". Its keys are Config's fields in snake_case (a "defaults"
// section, per-endpoint sections under "endpoints" that override it,
// "per_user", "per_user_rate_limit", "faults", "store", "alerts", "admin",
// "metrics", "otel"), durations are
// strings such as "15s", and ${NAME} anywhere in a value is replaced by the
// environment variable NAME (one that is not set is an error, so that a
// secret is never silently empty; "$${" writes "${").
//
// It is strict: an unknown key, a value of the wrong type, a bad duration
// or a policy setting out of range is an error, and every problem is
// reported, each a *core.ConfigError naming the file, the key's path and
// the rule, such as
//
//	bulwark: bulwark.yaml: endpoints."GET /users/{id}".breaker.failure_threshold = -3 is invalid: must be between 1 and 1000000 (0 means the default, 5)
//
// Problems found only when the parts are built (a store's path, an alert
// URL) are named the same way by New.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("bulwark: %w", err)
	}
	return ParseConfig(filepath.Base(path), data)
}

// ParseConfig reads a configuration from data, as LoadConfig reads a file
// (an embedded default, say); name is the file's, for the format (".json"
// or YAML) and for error messages.
func ParseConfig(name string, data []byte) (Config, error) {
	cfg := Config{source: name}
	tree, err := filecfg.Parse(name, data)
	if err != nil {
		return Config{}, cfg.fileErrors(err)
	}
	m, ok := tree.(map[string]any)
	if !ok {
		return Config{}, cfg.fileErrors(&filecfg.Error{Msg: "must hold a mapping of sections (defaults, endpoints, store, ...)"})
	}
	if err := filecfg.Expand(m, nil); err != nil {
		return Config{}, cfg.fileErrors(err)
	}
	// "otel: true" is the section with every default; false, none.
	if on, ok := m["otel"].(bool); ok {
		if on {
			m["otel"] = map[string]any{}
		} else {
			delete(m, "otel")
		}
	}
	// Keys that could not be decoded are left at their zero value, and the
	// policies are checked anyway, so that one pass reports every problem:
	// a bad file fails to load rather than to start.
	decodeErr := filecfg.Decode(m, &cfg, skip)
	checked, checkErr := core.NewManager(cfg.managerConfig())
	if checked != nil {
		// It started the file's experiments to check them: New starts them
		// for real.
		for _, f := range checked.Faults() {
			checked.StopFault(f.ID)
		}
	}
	if err := errors.Join(decodeErr, checkErr); err != nil {
		return Config{}, cfg.fileErrors(err)
	}
	cfg.tree = m
	return cfg, nil
}

// fileErrors names every problem in err by its path in the file, with the
// file's name, when the configuration came from one; otherwise by its Go
// path from bulwark.Config.
func (cfg *Config) fileErrors(err error) error {
	return rewriteFields(err, func(field string) string {
		goPath, ok := strings.CutPrefix(field, "core.ManagerConfig.")
		if !ok {
			if goPath, ok = strings.CutPrefix(field, "bulwark.Config."); !ok {
				return field // a part's own name: as good as it gets
			}
		}
		if cfg.source == "" {
			return "bulwark.Config." + goPath
		}
		return cfg.source + ": " + filecfg.GoPath(goPath)
	}, func(filePath string) string {
		if filePath == "" {
			return cfg.source
		}
		return cfg.source + ": " + filePath
	})
}

// rewriteFields renames the Field of every *core.ConfigError in err with
// rename, and turns file decoding errors into *core.ConfigError values
// named by file (given their path in the file).
func rewriteFields(err error, rename, file func(string) string) error {
	if err == nil {
		return nil
	}
	var out []error
	for _, e := range flatten(err) {
		var ce *core.ConfigError
		var fe *filecfg.Error
		switch {
		case errors.As(e, &ce):
			c := *ce
			c.Field = rename(c.Field)
			out = append(out, &c)
		case errors.As(e, &fe) && file != nil:
			out = append(out, &core.ConfigError{Field: file(fe.Path), Rule: fe.Msg})
		default:
			out = append(out, e)
		}
	}
	return errors.Join(out...)
}

// prefixErrors renames the fields of a part's errors, from its own
// package's names (old) to where the part sits in Config (prefix); an
// error that is not about one field (a folder that does not exist, say) is
// put under the part's own name.
func prefixErrors(prefix, old string, err error) error {
	if err == nil {
		return nil
	}
	var ce *core.ConfigError
	if !errors.As(err, &ce) {
		return &core.ConfigError{Field: strings.TrimSuffix(prefix, "."), Rule: err.Error()}
	}
	return rewriteFields(err, func(f string) string {
		if rest, ok := strings.CutPrefix(f, old); ok {
			return prefix + rest
		}
		return f
	}, nil)
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}
