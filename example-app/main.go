// Command example-app is a small service with every Bulwark feature turned
// on, and the demo that shows them:
//
//	go run ./example-app
//
// It serves a chi-routed API behind Bulwark's middleware (breakers,
// endpoint bulkheads, a per-user bulkhead keyed by the X-User header, SLO
// tracking), calls an upstream it also runs — one that flaps between
// healthy, slow and failing — through Bulwark's RoundTripper, watches that
// upstream with a health monitor, logs alerts, persists breaker state in a
// data folder, shares it through Redis when REDIS_URL is set, and serves
// Prometheus metrics and the admin dashboard. A traffic generator keeps it
// busy. It prints the URLs to open.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	bulwarkchi "github.com/bulwark-go/bulwark/adapters/chi"
	"github.com/bulwark-go/bulwark/adapters/nethttp"
	"github.com/bulwark-go/bulwark/admin"
	"github.com/bulwark-go/bulwark/alert"
	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/health"
	"github.com/bulwark-go/bulwark/metrics"
	"github.com/bulwark-go/bulwark/store"
)

// The RedisStore is the admin handler's cluster controller: control actions
// on the dashboard apply to every instance.
var _ admin.ClusterController = (*store.RedisStore)(nil)

// upstreamEndpoint names the outbound breaker: one name whatever port the
// upstream gets, so that saved state finds it again after a restart.
const upstreamEndpoint = "upstream:quotes"

type options struct {
	addr     string
	dataDir  string
	redisURL string
	token    string
	traffic  bool
	upstream string
	bare     bool
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("example-app", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", envOr("ADDR", "localhost:8080"), "address to listen on (env ADDR)")
	fs.StringVar(&o.dataDir, "data", envOr("DATA_DIR", filepath.Join(os.TempDir(), "bulwark-example")), "folder for saved breaker state (env DATA_DIR)")
	fs.StringVar(&o.redisURL, "redis-url", os.Getenv("REDIS_URL"), "share breaker state through this Redis, e.g. redis://localhost:6379/0 (env REDIS_URL)")
	fs.StringVar(&o.token, "admin-token", os.Getenv("BULWARK_ADMIN_TOKEN"), "token for the dashboard's control buttons, 16+ characters; generated when empty (env BULWARK_ADMIN_TOKEN)")
	fs.BoolVar(&o.traffic, "traffic", true, "generate demo traffic")
	fs.StringVar(&o.upstream, "upstream", modeFlap, "what the demo upstream does: flap, healthy, slow or failing")
	fs.BoolVar(&o.bare, "bare", false, "serve the API without Bulwark (for load comparisons)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if !validMode(o.upstream) {
		return o, fmt.Errorf("-upstream %q: want flap, healthy, slow or failing", o.upstream)
	}
	if o.token != "" && len(o.token) < 16 {
		return o, fmt.Errorf("-admin-token: %d characters; use at least 16", len(o.token))
	}
	if o.redisURL != "" {
		if _, err := redis.ParseURL(o.redisURL); err != nil {
			return o, fmt.Errorf("-redis-url: %v", err)
		}
	}
	return o, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "example-app: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := serve(o, stdout, log); err != nil {
		log.Error("example-app stopped", "err", err)
		return 1
	}
	return 0
}

// serve runs the app until SIGINT or SIGTERM, then drains requests, saves
// state and returns.
func serve(o options, stdout io.Writer, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if o.token == "" {
		o.token = randomToken()
	}
	up, err := startUpstream(o.upstream)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.addr, err)
	}
	base := "http://" + ln.Addr().String()

	var app *stack
	if o.bare {
		app, err = bareStack(up, o)
	} else {
		app, err = fullStack(up, o, log)
	}
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: app.handler, ReadHeaderTimeout: 5 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	fmt.Fprintf(stdout, "Bulwark example app is running.\n")
	fmt.Fprintf(stdout, "  Dashboard:    %s/admin/\n", base)
	fmt.Fprintf(stdout, "  Metrics:      %s/metrics\n", base)
	fmt.Fprintf(stdout, "  API:          %s/api/users/42  (also /api/quotes/ACME, POST /api/orders, /api/reports/daily)\n", base)
	fmt.Fprintf(stdout, "  Admin token:  %s  (paste it into the dashboard to use its control buttons)\n", o.token)
	fmt.Fprintf(stdout, "  Upstream:     %s  (%s; switch with POST %s/demo/upstream?mode=failing and the token)\n", up.url, o.upstream, base)
	fmt.Fprintf(stdout, "  State file:   %s\n", app.stateFile)
	if o.redisURL != "" {
		fmt.Fprintf(stdout, "  Shared state: %s\n", o.redisURL)
	} else {
		fmt.Fprintf(stdout, "  Shared state: off (set REDIS_URL to share breakers across instances)\n")
	}
	fmt.Fprintf(stdout, "Press Ctrl+C to stop.\n")

	var gen *traffic
	if o.traffic {
		gen = startTraffic(base)
	}
	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: draining requests and saving state")
	if gen != nil {
		gen.stop()
	}
	drain, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(drain)
	err = errors.Join(err, app.close(drain))
	up.close(drain)
	return err
}

// stack is the app's handler and what must be closed after it.
type stack struct {
	handler   http.Handler
	stateFile string
	closers   []func(context.Context) error // in order
}

func (s *stack) close(ctx context.Context) error {
	var errs []error
	for _, c := range s.closers {
		errs = append(errs, c(ctx))
	}
	return errors.Join(errs...)
}

// fullStack wires every Bulwark feature around the API.
func fullStack(up *upstream, o options, log *slog.Logger) (*stack, error) {
	s := &stack{stateFile: filepath.Join(o.dataDir, "breakers.state")}
	m, err := core.NewManager(core.ManagerConfig{
		Defaults: core.EndpointConfig{
			Breaker: &core.BreakerConfig{
				FailureThreshold:      5,
				Timeout:               15 * time.Second,
				MinRequestsForRate:    20,
				SlowCallDuration:      400 * time.Millisecond,
				SlowCallRateThreshold: 80,
				OpenBackoffMultiplier: 1.5,
				MaxOpenDuration:       time.Minute,
			},
			Bulkhead: &core.BulkheadConfig{MaxConcurrentRequests: 16, MaxQueueSize: 8, QueueTimeout: 500 * time.Millisecond},
			SLO:      &core.SLOConfig{TargetSuccessRate: 0.99, Window: 5 * time.Minute},
		},
		Endpoints: map[string]core.EndpointConfig{
			upstreamEndpoint: {Retry: &core.RetryConfig{MaxAttempts: 3, InitialBackoff: 50 * time.Millisecond, MaxBackoff: time.Second}},
		},
		PerUser: &core.PerUserConfig{
			Bulkhead: core.BulkheadConfig{MaxConcurrentRequests: 4, MaxQueueSize: 2, QueueTimeout: 200 * time.Millisecond},
			MaxUsers: 1000,
		},
	})
	if err != nil {
		return nil, err
	}

	// Persistence first, so saved state is back before any request.
	if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data folder: %w", err)
	}
	files, err := store.NewFileStore(store.FileConfig{Path: s.stateFile, Interval: 5 * time.Second, Logger: log})
	if err != nil {
		return nil, err
	}
	if err := files.LoadErr(); err != nil {
		log.Warn("saved state not loaded; starting fresh", "err", err)
	}
	if err := files.AttachManager(m); err != nil {
		return nil, err
	}

	// Shared state, when asked for.
	var cluster admin.ClusterController
	var shared *store.RedisStore
	if o.redisURL != "" {
		ropts, _ := redis.ParseURL(o.redisURL) // checked by parseFlags
		shared, err = store.NewRedisStore(store.RedisConfig{Client: redis.NewClient(ropts), Logger: log})
		if err != nil {
			return nil, err
		}
		if err := shared.AttachManager(m); err != nil {
			return nil, err
		}
		cluster = shared
	}

	// Alerts to the log: raised from the bus, once per cluster transition
	// when state is shared.
	logAlerts, err := alert.NewLogHandler(alert.LogConfig{Logger: log})
	if err != nil {
		return nil, err
	}
	alerts, err := alert.NewManager(alert.ManagerConfig{
		Bus:           m.Bus(),
		ClusterAlerts: shared != nil,
		Handlers:      []alert.Handler{logAlerts},
		Logger:        log,
	})
	if err != nil {
		return nil, err
	}

	// Outbound: the upstream behind a breaker with retry.
	transport, err := nethttp.NewTransport(nethttp.TransportConfig{
		Manager:     m,
		EndpointKey: func(*http.Request) string { return upstreamEndpoint },
	})
	if err != nil {
		return nil, err
	}

	// Health checks on the upstream feed its breaker.
	monitor, err := health.NewMonitor(health.MonitorConfig{Manager: m, Logger: log})
	if err != nil {
		return nil, err
	}
	probe, err := health.NewHTTPProbe(health.HTTPProbeConfig{URL: up.url + "/healthz", Timeout: time.Second})
	if err != nil {
		return nil, err
	}
	if err := monitor.Watch(upstreamEndpoint, probe, health.WatchConfig{Interval: 2 * time.Second, FailureThreshold: 3, SuccessThreshold: 2}); err != nil {
		return nil, err
	}

	// Metrics and the admin handler.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	collector, err := metrics.New(metrics.Config{Manager: m})
	if err != nil {
		return nil, err
	}
	reg.MustRegister(collector)
	adm, err := admin.New(admin.Config{
		Manager:    m,
		Prefix:     "/admin",
		Token:      o.token,
		PublicRead: true,
		Cluster:    cluster,
		Alerts:     alerts,
		Health:     monitor,
	})
	if err != nil {
		return nil, err
	}

	guard, err := bulwarkchi.Middleware(nethttp.Config{
		Manager: m,
		UserKey: nethttp.UserFromHeader("X-User"),
	})
	if err != nil {
		return nil, err
	}
	a := &api{quotes: &http.Client{Transport: transport, Timeout: 5 * time.Second}, upstream: up, token: o.token, cache: map[string][]byte{}}
	r := chi.NewRouter()
	r.Group(func(r chi.Router) {
		r.Use(guard)
		a.routes(r)
	})
	r.Post("/demo/upstream", a.setUpstreamMode)
	r.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	r.Mount("/admin", adm)
	r.Get("/", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/admin/", http.StatusFound) })
	s.handler = r

	// Closed after the server drained, in this order: the shared store
	// first, so that nothing this instance does while stopping reaches the
	// cluster; then the monitor, which hands back the breakers it forced
	// open (a new process could not tell its own hold from an operator's);
	// then the file store, which saves the final state.
	s.closers = []func(context.Context) error{
		adm.Close,
		func(ctx context.Context) error {
			if shared == nil {
				return nil
			}
			return shared.Close(ctx)
		},
		monitor.Close,
		files.Close,
		func(ctx context.Context) error {
			return errors.Join(alerts.Close(ctx), logAlerts.Close(ctx)) // the manager first: its last alerts reach the log
		},
	}
	return s, nil
}

// bareStack serves the same API with no Bulwark at all.
func bareStack(up *upstream, o options) (*stack, error) {
	a := &api{quotes: &http.Client{Timeout: 5 * time.Second}, upstream: up, token: o.token, cache: map[string][]byte{}}
	r := chi.NewRouter()
	a.routes(r)
	return &stack{handler: r, stateFile: "(none: -bare)"}, nil
}

func randomToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
