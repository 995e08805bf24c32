package bulwark

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/bulwark-go/bulwark/adapters/nethttp"
	"github.com/bulwark-go/bulwark/admin"
	"github.com/bulwark-go/bulwark/alert"
	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
	"github.com/bulwark-go/bulwark/health"
	"github.com/bulwark-go/bulwark/health/grpcprobe"
	"github.com/bulwark-go/bulwark/metrics"
	bulwarkotel "github.com/bulwark-go/bulwark/otel"
	"github.com/bulwark-go/bulwark/store"
)

// Kit is the whole stack, built by New: the Manager and its endpoints, the
// stores, alerts, health checks, metrics and the admin handler, wired in
// the order that is right. Close stops it.
type Kit struct {
	cfg     Config
	log     *slog.Logger
	manager *core.Manager
	http    nethttp.Config
	files   *store.FileStore
	shared  *store.RedisStore
	client  redis.UniversalClient // made by the kit from RedisConfig.URL, closed by it
	alerts  *alert.Manager
	sinks   []interface{ Close(context.Context) error } // alert handlers the kit made
	monitor *health.Monitor
	gather  prometheus.Gatherer
	tel     *bulwarkotel.Telemetry
	admin   *admin.Handler
	mw      func(http.Handler) http.Handler

	settings settings

	closeOnce sync.Once
	closeErr  error
}

// New builds the stack that cfg describes, or reports every problem of cfg
// as *core.ConfigError values (named by their path in the file, with the
// file's name, when cfg came from LoadConfig). What it started before a
// problem showed is stopped again.
func New(cfg Config) (*Kit, error) {
	k := &Kit{cfg: cfg, log: cfg.Logger}
	k.settings.k, k.settings.patches = k, map[string]patch{}
	if k.log == nil {
		k.log = slog.Default()
	}
	if err := k.build(); err != nil {
		_ = k.Close(context.Background())
		return nil, cfg.fileErrors(err)
	}
	return k, nil
}

// build makes each part in turn: what restores state is attached before
// anything uses a breaker, and what reacts to events listens before state
// is restored.
func (k *Kit) build() error {
	cfg := &k.cfg
	// Alerts first, on the bus the Manager is given: the experiments it
	// starts, and the states the stores restore, are published as they
	// start.
	bus := events.NewBus()
	var handlers []alert.Handler
	if cfg.Alerts.Log {
		h, err := alert.NewLogHandler(alert.LogConfig{Logger: k.log})
		if err != nil {
			return err
		}
		k.sinks = append(k.sinks, h)
		handlers = append(handlers, h)
	}
	if c := cfg.Alerts.Webhook; c != nil {
		h, err := alert.NewWebhookHandler(*c)
		if err != nil {
			return prefixErrors("bulwark.Config.Alerts.Webhook.", "alert.WebhookConfig.", err)
		}
		k.sinks = append(k.sinks, h)
		handlers = append(handlers, h)
	}
	if c := cfg.Alerts.Slack; c != nil {
		h, err := alert.NewSlackHandler(*c)
		if err != nil {
			return prefixErrors("bulwark.Config.Alerts.Slack.", "alert.SlackConfig.", err)
		}
		k.sinks = append(k.sinks, h)
		handlers = append(handlers, h)
	}
	var err error
	k.alerts, err = alert.NewManager(alert.ManagerConfig{
		Bus: bus, ClusterAlerts: cfg.Store.Redis != nil, Clock: cfg.Clock, Logger: k.log,
		Handlers: append(handlers, cfg.Alerts.Handlers...),
	})
	if err != nil {
		return err
	}
	mcfg := cfg.managerConfig()
	mcfg.Bus = bus
	m, err := core.NewManager(mcfg)
	if err != nil {
		return err
	}
	k.manager = m

	// State: the file restores what it saved, then Redis reconciles it with
	// the cluster's.
	if c := cfg.Store.File; c != nil {
		fc := *c
		fc.Clock, fc.Logger = cfg.Clock, k.log
		if k.files, err = store.NewFileStore(fc); err != nil {
			return prefixErrors("bulwark.Config.Store.File.", "store.FileConfig.", err)
		}
		if err := k.files.LoadErr(); err != nil {
			k.log.Warn("bulwark: saved state not loaded; starting fresh", "err", err)
		}
		if err := k.files.AttachManager(m); err != nil {
			return err
		}
	}
	if c := cfg.Store.Redis; c != nil {
		rc := c.RedisConfig
		if rc.Client == nil {
			opts, err := redis.ParseURL(c.URL)
			if err != nil {
				return &core.ConfigError{Field: "bulwark.Config.Store.Redis.URL", Value: redactURL(c.URL), Rule: "must be a Redis URL such as redis://host:6379/0 (" + err.Error() + ")"}
			}
			opts.ContextTimeoutEnabled = true
			k.client = redis.NewClient(opts)
			rc.Client = k.client
		}
		rc.Bus, rc.Clock, rc.Logger = m.Bus(), cfg.Clock, k.log
		rc.OnOverride = k.settings.remote // another instance's runtime change
		if k.shared, err = store.NewRedisStore(rc); err != nil {
			return prefixErrors("bulwark.Config.Store.Redis.", "store.RedisConfig.", err)
		}
		if err := k.shared.AttachManager(m); err != nil {
			return err
		}
	}
	k.settings.load()

	// Health checks, now that the breakers they hold are restored.
	if err := k.watch(); err != nil {
		return err
	}

	// Metrics and the admin handler.
	mc := cfg.Metrics
	mc.Manager = m
	col, err := metrics.New(mc)
	if err != nil {
		return prefixErrors("bulwark.Config.Metrics.", "metrics.Config.", err)
	}
	reg := cfg.Registerer
	if reg == nil {
		own := prometheus.NewRegistry()
		reg, k.gather = own, own
	} else if g, ok := reg.(prometheus.Gatherer); ok {
		k.gather = g
	}
	if err := reg.Register(col); err != nil {
		return fmt.Errorf("bulwark: metrics: %w", err)
	}
	if cfg.OTel != nil {
		oc := *cfg.OTel
		oc.Manager = m
		if k.tel, err = bulwarkotel.New(oc); err != nil {
			return prefixErrors("bulwark.Config.OTel.", "bulwarkotel.Config.", err)
		}
	}
	ac := cfg.Admin
	ac.Manager, ac.Health, ac.Alerts, ac.Settings, ac.Logger = m, k.monitor, k.alerts, k, k.log
	if k.shared != nil {
		ac.Cluster = k.shared
	}
	if k.admin, err = admin.New(ac); err != nil {
		return prefixErrors("bulwark.Config.Admin.", "admin.Config.", err)
	}

	k.http = nethttp.Config{Manager: m, UserKey: cfg.UserKey}
	if k.http.UserKey == nil && cfg.UserHeader != "" {
		k.http.UserKey = nethttp.UserFromHeader(cfg.UserHeader)
	}
	if k.tel != nil {
		k.http.Observer = k.tel.Observer()
	}
	if k.mw, err = nethttp.Middleware(k.http); err != nil {
		if (cfg.PerUser != nil || cfg.PerUserRateLimit != nil) && k.http.UserKey == nil {
			return &core.ConfigError{Field: "bulwark.Config.UserHeader", Rule: "is required with PerUser or PerUserRateLimit (or set UserKey in code): it names the header that carries the user's ID"}
		}
		return err
	}
	return nil
}

// managerConfig is the core part of cfg.
func (cfg *Config) managerConfig() core.ManagerConfig {
	mc := core.ManagerConfig{
		Defaults: cfg.Defaults, PerUser: cfg.PerUser, PerUserRateLimit: cfg.PerUserRateLimit,
		MaxEndpoints: cfg.MaxEndpoints, Clock: cfg.Clock,
		Faults:    cfg.Faults,
		Endpoints: make(map[string]core.EndpointConfig, len(cfg.Endpoints)),
	}
	for name, e := range cfg.Endpoints {
		mc.Endpoints[name] = e.EndpointConfig
	}
	return mc
}

// watch starts the health checks the endpoints give.
func (k *Kit) watch() error {
	names := slices.Sorted(mapsKeys(k.cfg.Endpoints))
	var errs []error
	for _, name := range names {
		h := k.cfg.Endpoints[name].Health
		if h == nil {
			continue
		}
		field := fmt.Sprintf("bulwark.Config.Endpoints[%s].Health.", name)
		p, err := h.probe(field)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if k.monitor == nil {
			if k.monitor, err = health.NewMonitor(health.MonitorConfig{Manager: k.manager, Clock: k.cfg.Clock, Logger: k.log, Instance: k.instance()}); err != nil {
				return err
			}
		}
		wc := health.WatchConfig{Interval: h.Interval, FailureThreshold: h.FailureThreshold, SuccessThreshold: h.SuccessThreshold, Timeout: h.Timeout}
		if err := k.monitor.Watch(name, p, wc); err != nil {
			errs = append(errs, prefixErrors(field, "health.WatchConfig.", err))
		}
	}
	return errors.Join(errs...)
}

// instance names this process for the health monitor when breaker state
// is shared, so that instances leave each other's holds alone.
func (k *Kit) instance() string {
	if k.shared == nil {
		return ""
	}
	return k.shared.InstanceID()
}

// probe makes the check h describes.
func (h *HealthConfig) probe(field string) (health.Probe, error) {
	if h.Probe != nil {
		if h.URL != "" {
			return nil, &core.ConfigError{Field: field + "URL", Value: h.URL, Rule: "must be empty when Probe is set"}
		}
		return h.Probe, nil
	}
	u, err := url.Parse(h.URL)
	if err != nil || u.Host == "" {
		return nil, &core.ConfigError{Field: field + "URL", Value: h.URL, Rule: "is required: an http://, https://, tcp://, ws://, wss://, grpc:// or grpcs:// URL with a host"}
	}
	name := h.Name
	if name == "" {
		name = h.URL
	}
	var p health.Probe
	switch u.Scheme {
	case "http", "https":
		p, err = health.NewHTTPProbe(health.HTTPProbeConfig{URL: h.URL, Name: name})
	case "tcp":
		p, err = health.NewTCPProbe(health.TCPProbeConfig{Address: u.Host, Name: name})
	case "ws", "wss":
		p, err = health.NewWebSocketProbe(health.WebSocketProbeConfig{URL: h.URL, Name: name})
	case "grpc", "grpcs":
		gc := grpcprobe.Config{Target: u.Host, Service: strings.TrimPrefix(u.Path, "/"), Name: name}
		if u.Scheme == "grpcs" {
			gc.TLS = grpcTLS(u.Hostname())
		}
		p, err = grpcprobe.New(gc)
	default:
		return nil, &core.ConfigError{Field: field + "URL", Value: h.URL, Rule: "must use http, https, tcp, ws, wss, grpc or grpcs"}
	}
	if err != nil {
		return nil, fmt.Errorf("bulwark: %sURL %q: %w", field, h.URL, err)
	}
	return p, nil
}

// Manager returns the Manager of every endpoint.
func (k *Kit) Manager() *core.Manager { return k.manager }

// HTTP returns the configuration that the router adapters take, so that
// each router keys endpoints its own way with the kit's policies:
//
//	mw, err := bulwarkchi.Middleware(kit.HTTP())
func (k *Kit) HTTP() nethttp.Config { return k.http }

// Middleware returns net/http middleware keyed by the pattern ServeMux
// matched (see nethttp.Middleware).
func (k *Kit) Middleware() func(http.Handler) http.Handler { return k.mw }

// Transport returns an http.RoundTripper that sends requests through the
// policies of the endpoint named endpoint: one name for a dependency, as
// Config.Endpoints knows it (a host and port may change between restarts).
// cfg gives the rest (Base, Fallback, …); its Manager, EndpointKey and
// Observer are the kit's to set.
func (k *Kit) Transport(endpoint string, cfg nethttp.TransportConfig) (http.RoundTripper, error) {
	if err := core.ValidateEndpoint(endpoint); err != nil {
		return nil, err
	}
	cfg.Manager, cfg.Observer = k.manager, k.http.Observer
	cfg.EndpointKey = func(*http.Request) string { return endpoint }
	return nethttp.NewTransport(cfg)
}

// Admin returns the admin handler: status, control, runtime settings, the
// live feed and the dashboard. Mount it under Config.Admin.Prefix.
func (k *Kit) Admin() http.Handler { return k.admin }

// Metrics returns a handler that serves the Prometheus metrics of the
// kit's registry, or of Config.Registerer when that is also a Gatherer
// (as a *prometheus.Registry is).
func (k *Kit) Metrics() http.Handler {
	if k.gather == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(k.gather, promhttp.HandlerOpts{})
}

// Close stops the stack: the admin handler's feed, the health checks
// (which release the breakers they hold), the Redis store (which shares
// what it owes first), the fault experiments running here (after the
// Redis store, so that the cluster's keep running elsewhere), the file
// store (which saves the final state), then alerts (which send what is
// queued, the experiments' resolutions among them). It returns every error, and when ctx
// ends first, one wrapping ctx.Err(). A second Close returns nil.
func (k *Kit) Close(ctx context.Context) error {
	first := false
	k.closeOnce.Do(func() {
		first = true
		var errs []error
		add := func(c interface{ Close(context.Context) error }) {
			if c != nil && !isNil(c) {
				errs = append(errs, c.Close(ctx))
			}
		}
		add(k.admin)
		add(k.tel)
		add(k.monitor)
		add(k.shared)
		k.stopFaults()
		add(k.files)
		add(k.alerts)
		for _, s := range k.sinks {
			add(s)
		}
		if k.client != nil {
			errs = append(errs, k.client.Close())
		}
		k.closeErr = errors.Join(errs...)
	})
	if !first {
		return nil
	}
	return k.closeErr
}

// stopFaults ends the fault experiments still running, so that their
// timer goroutine ends with the kit.
func (k *Kit) stopFaults() {
	if k.manager == nil {
		return
	}
	for _, f := range k.manager.Faults() {
		k.manager.StopFault(f.ID)
	}
}
