package bulwark

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
	"github.com/bulwark-go/bulwark/internal/filecfg"
	"github.com/bulwark-go/bulwark/store"
)

// Where an endpoint's settings come from, as EndpointSettings says.
const (
	sourceDefault = "default" // no entry: ManagerConfig.Defaults
	sourceFile    = "file"    // the kit's Config (from a file, or from code)
	sourceRuntime = "runtime" // changed while running
)

// settings keeps the runtime changes of endpoints' settings: each is a
// patch, shaped like a file's endpoint section, laid over what the kit's
// Config gives the endpoint.
type settings struct {
	k  *Kit
	mu sync.Mutex // serialises changes, so that store and Manager agree
	// patches are the runtime changes in force, by endpoint.
	patches map[string]patch
}

type patch struct {
	tree     map[string]any
	version  uint64 // the shared version; 0 without Redis
	instance string // who made it, when shared
}

// load puts in force the runtime changes that outlived the last run: the
// cluster's when Redis answers, else the state file's.
func (s *settings) load() {
	k := s.k
	var saved []store.Override
	switch {
	case k.shared != nil:
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		if saved, err = k.shared.Overrides(ctx); err != nil {
			k.log.Warn("bulwark: runtime settings not loaded from Redis; using the state file's", "err", err)
			saved = k.fileOverrides()
		}
	default:
		saved = k.fileOverrides()
	}
	for _, o := range saved {
		if err := s.applySaved(o); err != nil {
			k.log.Warn("bulwark: saved runtime settings ignored", "endpoint", o.Endpoint, "err", err)
		}
	}
}

func (k *Kit) fileOverrides() []store.Override {
	if k.files == nil {
		return nil
	}
	return k.files.Overrides()
}

// applySaved puts a saved or shared change in force without saving it
// again where it came from.
func (s *settings) applySaved(o store.Override) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o.Settings == nil {
		delete(s.patches, o.Endpoint)
		return s.apply(o.Endpoint)
	}
	tree, err := parsePatch(o.Settings)
	if err != nil {
		return err
	}
	s.patches[o.Endpoint] = patch{tree: tree, version: o.Version, instance: o.Instance}
	return s.apply(o.Endpoint)
}

// remote is told of another instance's change by the Redis store.
func (s *settings) remote(o store.Override) {
	if err := s.applySaved(o); err != nil {
		s.k.log.Warn("bulwark: shared runtime settings ignored", "endpoint", o.Endpoint, "err", err)
		return
	}
	if s.k.files != nil {
		s.k.files.SetOverride(o)
	}
	s.publish(o.Endpoint, o.Version, o.Instance)
}

// EndpointSettings returns the endpoint's settings in effect, shaped as a
// configuration file's section for it, and where they come from: "runtime"
// (changed while running), "file" (the kit's Config names the endpoint) or
// "default".
func (k *Kit) EndpointSettings(endpoint string) (json.RawMessage, string) {
	src := sourceDefault
	if _, ok := k.cfg.Endpoints[endpoint]; ok {
		src = sourceFile
	}
	k.settings.mu.Lock()
	if _, ok := k.settings.patches[endpoint]; ok {
		src = sourceRuntime
	}
	k.settings.mu.Unlock()
	e, err := k.manager.Endpoint(endpoint)
	if err != nil {
		return nil, src
	}
	cfg := e.Config()
	b, err := json.Marshal(filecfg.Encode(&cfg, skip))
	if err != nil {
		return nil, src
	}
	return b, src
}

// Reconfigure changes an endpoint's settings while the service runs: patch is
// a JSON object shaped like a configuration file's section for an
// endpoint, and only the keys it gives change (over earlier runtime
// changes, over the kit's Config). The endpoint's breaker keeps its state
// and counts. With a Redis store the change reaches every instance within
// a sync interval and outlives restarts; with a state file it outlives
// restarts of this instance. A bad patch changes nothing and is reported
// as *core.ConfigError values naming each bad key.
//
//	err := kit.Reconfigure(ctx, "GET /users/{id}", []byte(`{"breaker": {"failure_threshold": 3}}`))
func (k *Kit) Reconfigure(ctx context.Context, endpoint string, patchJSON []byte) error {
	p, err := parsePatch(patchJSON)
	if err != nil {
		return err
	}
	s := &k.settings
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.change(ctx, endpoint, filecfg.Merge(s.patches[endpoint].tree, p))
}

// ResetConfig undoes an endpoint's runtime changes: it gets what the kit's
// Config gives it again, on every instance when shared.
func (k *Kit) ResetConfig(ctx context.Context, endpoint string) error {
	s := &k.settings
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.patches[endpoint]; !ok {
		return nil
	}
	return s.change(ctx, endpoint, nil)
}

// change checks tree (nil: no runtime change), stores it where changes are
// kept, then puts it in force. s.mu is held.
func (s *settings) change(ctx context.Context, endpoint string, tree map[string]any) error {
	if err := core.ValidateEndpoint(endpoint); err != nil {
		return &core.ConfigError{Field: "endpoint", Value: endpoint, Rule: err.Error()}
	}
	// Keys that could not be decoded are left at their zero value and the
	// rest checked anyway, so that one answer names every problem.
	cfg, decodeErr := s.effective(endpoint, tree)
	if err := errors.Join(decodeErr, checkEndpoint(endpoint, cfg)); err != nil {
		return err
	}
	var doc []byte
	var err error
	if tree != nil {
		if doc, err = json.Marshal(tree); err != nil {
			return err
		}
	}
	o := store.Override{Endpoint: endpoint, Settings: doc}
	if s.k.shared != nil {
		if o, err = s.k.shared.PutOverride(ctx, o); err != nil {
			return fmt.Errorf("bulwark: settings of %q not changed: %w", endpoint, err)
		}
	}
	if s.k.files != nil {
		s.k.files.SetOverride(o)
	}
	if tree == nil {
		delete(s.patches, endpoint)
	} else {
		s.patches[endpoint] = patch{tree: tree, version: o.Version, instance: o.Instance}
	}
	if err := s.k.manager.Reconfigure(endpoint, cfg.EndpointConfig); err != nil {
		return err // checked above: only the Manager's bound can refuse now
	}
	s.publish(endpoint, o.Version, o.Instance)
	return nil
}

// apply puts the endpoint's settings in force; s.mu is held.
func (s *settings) apply(endpoint string) error {
	cfg, err := s.effective(endpoint, s.patches[endpoint].tree)
	if err != nil {
		return err
	}
	return s.k.manager.Reconfigure(endpoint, cfg.EndpointConfig)
}

// effective is the endpoint's configuration: its section of the kit's
// Config with tree laid over it.
func (s *settings) effective(endpoint string, tree map[string]any) (EndpointConfig, error) {
	if tree == nil {
		return s.k.cfg.Endpoints[endpoint], nil
	}
	if _, ok := tree["health"]; ok {
		return EndpointConfig{}, &core.ConfigError{Field: endpointPath(endpoint, "health"), Rule: "cannot change while running: restart with a new configuration"}
	}
	// A policy the endpoint's section leaves out runs on the defaults'
	// section, so a change to one of its keys starts from there.
	base := map[string]any{}
	for k, v := range s.k.cfg.section(endpoint) {
		base[k] = v
	}
	defaults := s.k.cfg.defaultsSection()
	for k := range tree {
		if _, ok := base[k]; !ok && defaults[k] != nil {
			base[k] = defaults[k]
		}
	}
	var ec EndpointConfig
	err := filecfg.Decode(filecfg.Merge(base, tree), &ec, skip)
	return ec, patchErrors(endpoint, err)
}

// defaultsSection returns the defaults section of the configuration as a
// file holds it.
func (cfg *Config) defaultsSection() map[string]any {
	if cfg.tree != nil {
		if d, ok := cfg.tree["defaults"].(map[string]any); ok {
			return d
		}
		return map[string]any{}
	}
	return filecfg.Encode(&cfg.Defaults, skip)
}

// section returns the endpoint's section of the configuration as a file
// holds it: as read, for a loaded Config; as encoded, for one made in code.
func (cfg *Config) section(endpoint string) map[string]any {
	if cfg.tree != nil {
		if eps, ok := cfg.tree["endpoints"].(map[string]any); ok {
			if sec, ok := eps[endpoint].(map[string]any); ok {
				return sec
			}
		}
		return map[string]any{}
	}
	ec := cfg.Endpoints[endpoint]
	return filecfg.Encode(&ec, skip)
}

// checkEndpoint reports the problems of an endpoint's configuration
// without putting it in force, in the file's terms.
func checkEndpoint(endpoint string, ec EndpointConfig) error {
	_, err := core.NewManager(core.ManagerConfig{Endpoints: map[string]core.EndpointConfig{endpoint: ec.EndpointConfig}})
	if err == nil {
		return nil
	}
	return rewriteFields(err, func(f string) string {
		rest := strings.TrimPrefix(f, "core.ManagerConfig.Endpoints["+endpoint+"].")
		return endpointPath(endpoint, filecfg.GoPath(rest))
	}, nil)
}

func (s *settings) publish(endpoint string, version uint64, instance string) {
	src := sourceFile
	if _, ok := s.patches[endpoint]; ok {
		src = sourceRuntime
	}
	s.k.manager.Bus().Publish(events.ConfigChange{
		Type: events.TypeConfigChange, Endpoint: endpoint, Source: src,
		Version: version, Instance: instance, Timestamp: time.Now().UTC(),
	})
}

// parsePatch reads a runtime change: a JSON object.
func parsePatch(b []byte) (map[string]any, error) {
	tree, err := filecfg.Parse("patch.json", b)
	if err != nil {
		return nil, &core.ConfigError{Field: "body", Rule: err.Error()}
	}
	m, ok := tree.(map[string]any)
	if !ok {
		return nil, &core.ConfigError{Field: "body", Rule: `must be a JSON object such as {"breaker":{"failure_threshold":3}}`}
	}
	return m, nil
}

// endpointPath is the file path of rest, a path within the endpoint's
// section.
func endpointPath(endpoint, rest string) string {
	p := filecfg.Join("endpoints", endpoint)
	if rest == "" {
		return p
	}
	return p + "." + rest
}

// patchErrors turns a patch's decoding errors into *core.ConfigError
// values named by their path in the endpoint's section.
func patchErrors(endpoint string, err error) error {
	return rewriteFields(err, func(f string) string { return f }, func(p string) string { return endpointPath(endpoint, p) })
}
