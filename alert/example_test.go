package alert_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/bulwark-go/bulwark/alert"
	"github.com/bulwark-go/bulwark/core"
)

// A Manager following the breakers' Bus posts to a webhook: Critical when
// a breaker opens, resolved when it closes.
func ExampleNewManager() {
	// A webhook receiver standing in for Alertmanager or a pager.
	got := make(chan string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p struct {
			Status string `json:"status"`
			Alerts []struct {
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"alerts"`
		}
		_ = json.NewDecoder(r.Body).Decode(&p)
		a := p.Alerts[0]
		got <- fmt.Sprintf("%s %s %s - %s", p.Status, a.Labels["severity"], a.Labels["endpoint"], a.Annotations["description"])
	}))
	defer srv.Close()

	m, err := core.NewManager(core.ManagerConfig{Defaults: core.EndpointConfig{Breaker: &core.BreakerConfig{FailureThreshold: 2}}})
	if err != nil {
		log.Fatal(err)
	}
	hook, err := alert.NewWebhookHandler(alert.WebhookConfig{URL: srv.URL})
	if err != nil {
		log.Fatal(err)
	}
	alerts, err := alert.NewManager(alert.ManagerConfig{Bus: m.Bus(), Handlers: []alert.Handler{hook}})
	if err != nil {
		log.Fatal(err)
	}

	e, _ := m.Endpoint("api-service")
	b := e.Breaker()
	b.RecordFailure()
	b.RecordFailure() // opens
	b.Reset()         // closes

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = alerts.Close(ctx) // handles the transitions already published
	_ = hook.Close(ctx)   // sends what is queued
	fmt.Println(<-got)
	fmt.Println(<-got)
	// Output:
	// firing critical api-service - Circuit breaker for endpoint 'api-service' has opened: failure threshold exceeded: 2 consecutive failures
	// resolved critical api-service - Circuit breaker for endpoint 'api-service' has opened: failure threshold exceeded: 2 consecutive failures
}

// Alerts to Slack and to the log, fired by hand.
func ExampleNewSlackHandler() {
	slack, err := alert.NewSlackHandler(alert.SlackConfig{WebhookURL: os.Getenv("SLACK_WEBHOOK_URL")})
	if err != nil {
		log.Print(err) // no URL configured
		return
	}
	logs, _ := alert.NewLogHandler(alert.LogConfig{Logger: slog.Default()})
	alerts, _ := alert.NewManager(alert.ManagerConfig{Handlers: []alert.Handler{slack, logs}})

	a := alerts.Fire(alert.Alert{
		Severity: alert.Warning,
		Type:     alert.Type{Message: "Disk almost full", Metadata: map[string]string{"host": "db-1"}},
		Message:  "db-1 has 3% disk space left",
	})
	alerts.Resolve(a.ID)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = slack.Close(ctx)
	_ = logs.Close(ctx)
}

func ExampleManager_Fire() {
	alerts, _ := alert.NewManager(alert.ManagerConfig{History: 10})
	alerts.AddHandler(alert.HandlerFunc(func(a alert.Alert) {
		fmt.Printf("%s resolved=%v: %s\n", a.Severity, a.Resolved, a.Message)
	}))
	a := alerts.Fire(alert.Alert{Severity: alert.Critical, Message: "payments down"})
	fmt.Println("active:", len(alerts.Active()))
	alerts.Resolve(a.ID)
	fmt.Println("active:", len(alerts.Active()), "recent:", len(alerts.Recent()))
	// Output:
	// Critical resolved=false: payments down
	// active: 1
	// Critical resolved=true: payments down
	// active: 0 recent: 1
}
