package bulwark

import (
	"log/slog"
	"net/http"
	"reflect"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bulwark-go/bulwark/admin"
	"github.com/bulwark-go/bulwark/alert"
	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/health"
	"github.com/bulwark-go/bulwark/internal/filecfg"
	"github.com/bulwark-go/bulwark/metrics"
	bulwarkotel "github.com/bulwark-go/bulwark/otel"
	"github.com/bulwark-go/bulwark/store"
)

// Config describes the whole stack: the policies of every endpoint and the
// parts around them. It is what a configuration file holds (see
// LoadConfig), and every part of it is optional: the zero Config gives
// every endpoint the default breaker and retry, an admin handler without
// control, and metrics on a registry of the kit's own.
//
// In a file, each field is a key spelled in snake_case (FailureThreshold
// is failure_threshold), durations are strings such as "15s", and fields
// whose type a file cannot hold (functions, clients, loggers) are set in
// code only.
type Config struct {
	// Defaults are the policies of every endpoint (see
	// core.ManagerConfig.Defaults).
	Defaults core.EndpointConfig
	// Endpoints gives endpoints policies and health checks of their own,
	// by name: a route pattern such as "GET /users/{id}", or the name
	// given to Kit.Transport. A policy set here replaces the Defaults' as a
	// whole; a nil one inherits it.
	Endpoints map[string]EndpointConfig
	// PerUser, when set, gives every user a bulkhead of their own (see
	// core.PerUserConfig); requests are told apart by UserHeader or
	// UserKey.
	PerUser *core.PerUserConfig
	// PerUserRateLimit, when set, gives every user a rate limit of their
	// own (see core.PerUserRateLimitConfig); users are told apart as for
	// PerUser.
	PerUserRateLimit *core.PerUserRateLimitConfig
	// MaxEndpoints bounds the endpoints tracked. Default 1000.
	MaxEndpoints int
	// UserHeader names the request header that carries the user's ID, for
	// the per-user bulkhead (and fault experiments filtered by user).
	// Trust it only behind something that sets or checks it. UserKey, when
	// set, is used instead.
	UserHeader string
	// Faults, when set, turns fault injection on (see core.FaultLimits):
	// experiments can be started through the admin handler's faults routes
	// (with its token) or Manager().StartFault, and its Experiments are
	// started by New, each with an Info alert. In a file:
	//
	//	faults:
	//	  default_duration: 10m
	//	  max_duration: 1h
	//	  experiments:
	//	    - {endpoint: "GET /users/{id}", percent: 50, status: 500, duration: 20s}
	//
	// An experiment's ends, origin and injected are not set from a file.
	Faults *core.FaultLimits

	// Store says where breaker state and runtime settings are kept.
	Store StoreConfig
	// Alerts says where alerts go.
	Alerts AlertsConfig
	// Admin configures the admin handler (Kit.Admin); its Manager, Health,
	// Alerts, Cluster, Settings and Logger are the kit's to set.
	Admin admin.Config
	// Metrics configures the Prometheus collector; its Manager is the
	// kit's to set.
	Metrics metrics.Config
	// OTel, when set, reports the endpoints through OpenTelemetry as well
	// (package bulwarkotel): instruments through its MeterProvider (nil:
	// the global one) and events on each request's current span (through
	// the global TracerProvider's spans, as the application makes them). In
	// a file, "otel: true" turns it on with the defaults, and a section
	// ("otel: {exemplars: true}") sets its options. Its Manager is the
	// kit's to set.
	OTel *bulwarkotel.Config

	// UserKey names a request's user (code only; see nethttp.UserFromHeader
	// and nethttp.UserFromContext). It wins over UserHeader.
	UserKey func(*http.Request) string
	// Registerer receives the Prometheus collector (code only). Nil means
	// a registry of the kit's own, served by Kit.Metrics.
	Registerer prometheus.Registerer
	// Clock tells time for every part (code only). Nil means
	// core.SystemClock().
	Clock core.Clock
	// Logger receives every part's logs (code only). Nil means
	// slog.Default().
	Logger *slog.Logger

	// source is the file LoadConfig read, for error messages; tree is what
	// it read, so that runtime changes merge over the file's keys.
	source string
	tree   map[string]any
}

// EndpointConfig gives one endpoint its policies and, for a dependency,
// its health check.
type EndpointConfig struct {
	core.EndpointConfig
	// Health, when set, checks the dependency behind the endpoint and
	// holds its breaker open while the checks fail.
	Health *HealthConfig
}

// HealthConfig is one endpoint's health check.
type HealthConfig struct {
	// URL says what to check and how: http:// or https:// (a GET answered
	// 200 to 399), tcp://host:port (a connection), ws:// or wss:// (a
	// WebSocket handshake and ping), grpc://host:port or grpcs://host:port
	// (the gRPC health service; a path names the service checked). Either
	// URL or Probe is required.
	URL string
	// Name names the check in the breaker's hold and in status; a check
	// that keeps its name across restarts takes its predecessor's hold
	// over. Default: the URL.
	Name string
	// Probe is a check of your own (code only), instead of URL.
	Probe health.Probe
	// Interval, FailureThreshold, SuccessThreshold and Timeout: see
	// health.WatchConfig.
	Interval         time.Duration
	FailureThreshold int
	SuccessThreshold int
	Timeout          time.Duration
}

// StoreConfig says where state is kept. Either or both may be set.
type StoreConfig struct {
	// File keeps breaker state and runtime settings in a state file, so
	// that they survive a restart.
	File *store.FileConfig
	// Redis shares them with every instance on the same Redis.
	Redis *RedisConfig
}

// RedisConfig is store.RedisConfig plus the address of the server, for a
// file to give.
type RedisConfig struct {
	store.RedisConfig
	// URL is the server, as redis.ParseURL reads it:
	// redis://user:password@host:6379/0, or rediss:// for TLS. Required
	// unless RedisConfig.Client is set in code.
	URL string
}

// AlertsConfig says where alerts go; alerts on breaker and SLO events are
// raised whatever it says, and shown by the admin handler.
type AlertsConfig struct {
	// Log writes every alert to the Logger.
	Log bool
	// Webhook posts every alert as JSON.
	Webhook *alert.WebhookConfig
	// Slack posts every alert to a Slack incoming webhook.
	Slack *alert.SlackConfig
	// Handlers receive every alert too (code only).
	Handlers []alert.Handler
}

// skip lists the fields of the parts' configs that the kit sets itself and
// a file may therefore not.
var skip = filecfg.Skip{
	reflect.TypeFor[core.BreakerConfig]():  {"Name"},
	reflect.TypeFor[core.BulkheadConfig](): {"Name"},
	reflect.TypeFor[core.FaultLimits]():    nil,
	reflect.TypeFor[core.Fault]():          {"Ends", "Origin", "Injected"},
}
