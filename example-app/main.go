// Command example-app is a small service guarded by Bulwark: one route whose
// upstream fails now and then, behind a circuit breaker.
//
//	go run ./example-app            # listens on localhost:8080
//	go run ./example-app -addr :0   # any free port
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

var errUpstream = errors.New("upstream unavailable")

func run(args []string) int {
	fs := flag.NewFlagSet("example-app", flag.ContinueOnError)
	addr := fs.String("addr", "localhost:8080", "address to listen on")
	failRate := fs.Float64("fail-rate", 0.3, "share of upstream calls that fail, 0 to 1")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *failRate < 0 || *failRate > 1 {
		fmt.Fprintf(os.Stderr, "example-app: -fail-rate %v must be between 0 and 1\n", *failRate)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	m, err := core.NewManager(core.ManagerConfig{
		Breaker: core.Config{FailureThreshold: 5, Timeout: 10 * time.Second},
	})
	if err != nil {
		log.Error("config", "err", err)
		return 1
	}
	sub := m.Bus().Subscribe(64)
	go func() {
		for e := range sub.C() {
			if sc, ok := e.(events.StateChange); ok {
				log.Info("breaker", "endpoint", sc.Endpoint, "from", sc.OldState, "to", sc.NewState, "reason", sc.Reason)
			}
		}
	}()
	defer sub.Close()

	mux := http.NewServeMux()
	mux.Handle("GET /quote", guarded(m, "GET /quote", func(w http.ResponseWriter, r *http.Request) error {
		if rand.Float64() < *failRate {
			return errUpstream
		}
		return json.NewEncoder(w).Encode(map[string]any{"quote": rand.IntN(1000)})
	}))
	mux.HandleFunc("GET /breakers", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(m.Snapshots())
	})

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "example-app: listen on %s: %v\n", *addr, err)
		return 1
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	url := "http://" + ln.Addr().String()
	fmt.Printf("example-app listening on %s\n  try: curl %s/quote\n  breakers: curl %s/breakers\n", url, url, url)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		log.Error("serve", "err", err)
		return 1
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	return 0
}

// guarded runs h behind the endpoint's breaker: an open breaker answers 503
// with Retry-After without calling h, and h's error counts as a failure.
func guarded(m *core.Manager, endpoint string, h func(http.ResponseWriter, *http.Request) error) http.Handler {
	b, err := m.Breaker(endpoint)
	if err != nil {
		panic(err) // a constant, valid endpoint name
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := b.Execute(r.Context(), func(ctx context.Context) error { return h(w, r) })
		var rejected *core.RejectedError
		switch {
		case errors.As(err, &rejected):
			secs := max(1, int((rejected.RetryAfter()+time.Second-1)/time.Second))
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			http.Error(w, "circuit open for "+endpoint, http.StatusServiceUnavailable)
		case err != nil:
			http.Error(w, err.Error(), http.StatusBadGateway)
		}
	})
}
