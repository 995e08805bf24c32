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
	_ "embed"
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
	"github.com/redis/go-redis/v9"

	"github.com/bulwark-go/bulwark"
	bulwarkchi "github.com/bulwark-go/bulwark/adapters/chi"
	"github.com/bulwark-go/bulwark/adapters/nethttp"
)

// upstreamEndpoint names the outbound breaker: one name whatever port the
// upstream gets, so that saved state finds it again after a restart.
const upstreamEndpoint = "upstream:quotes"

// defaultConfig is the configuration the app runs on without -config.
//
//go:embed bulwark.example.yaml
var defaultConfig []byte

type options struct {
	config   string
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
	fs.StringVar(&o.config, "config", os.Getenv("BULWARK_CONFIG"), "Bulwark configuration file, YAML or JSON; empty runs on the embedded bulwark.example.yaml (env BULWARK_CONFIG)")
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
	close     func(context.Context) error
}

// fullStack serves the API behind every Bulwark feature: the kit builds
// them from the configuration, and the flags fill in what only they know.
func fullStack(up *upstream, o options, log *slog.Logger) (*stack, error) {
	cfg, err := loadConfig(o.config)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data folder: %w", err)
	}
	if cfg.Store.File != nil && cfg.Store.File.Path == "" {
		cfg.Store.File.Path = filepath.Join(o.dataDir, "breakers.state")
	}
	if o.redisURL != "" {
		cfg.Store.Redis = &bulwark.RedisConfig{URL: o.redisURL}
	}
	if h := cfg.Endpoints[upstreamEndpoint].Health; h != nil && h.URL == "" {
		h.URL = up.url + "/healthz"
	}
	cfg.Admin.Token = o.token
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cfg.Registerer, cfg.Logger = reg, log
	kit, err := bulwark.New(cfg)
	if err != nil {
		return nil, err
	}
	a := &api{upstream: up, token: o.token, cache: map[string][]byte{}}
	quotes, err := kit.Transport(upstreamEndpoint, nethttp.TransportConfig{Fallback: a.staleQuote})
	if err != nil {
		return nil, errors.Join(err, kit.Close(context.Background()))
	}
	a.quotes = &http.Client{Transport: quotes, Timeout: 5 * time.Second}
	guard, err := bulwarkchi.Middleware(kit.HTTP())
	if err != nil {
		return nil, errors.Join(err, kit.Close(context.Background()))
	}
	r := chi.NewRouter()
	r.Group(func(r chi.Router) {
		r.Use(guard)
		a.routes(r)
	})
	r.Post("/demo/upstream", a.setUpstreamMode)
	r.Handle("/metrics", kit.Metrics())
	r.Mount(cfg.Admin.Prefix, kit.Admin())
	r.Get("/", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, cfg.Admin.Prefix+"/", http.StatusFound)
	})
	return &stack{handler: r, stateFile: cfg.Store.File.Path, close: kit.Close}, nil
}

// loadConfig reads the -config file, or the embedded default.
func loadConfig(path string) (bulwark.Config, error) {
	if path != "" {
		return bulwark.LoadConfig(path)
	}
	return bulwark.ParseConfig("bulwark.example.yaml", defaultConfig)
}

// bareStack serves the same API with no Bulwark at all.
func bareStack(up *upstream, o options) (*stack, error) {
	a := &api{quotes: &http.Client{Timeout: 5 * time.Second}, upstream: up, token: o.token, cache: map[string][]byte{}}
	r := chi.NewRouter()
	a.routes(r)
	return &stack{handler: r, stateFile: "(none: -bare)", close: func(context.Context) error { return nil }}, nil
}

func randomToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
