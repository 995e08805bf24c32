package events_test

import (
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/bulwark-go/bulwark/events"
)

// Breaker transitions published on a bus become alerts posted to a webhook:
// Critical when the breaker opens, resolved when it closes.
func ExampleCircuitBreakerAlertHandler() {
	// A webhook receiver standing in for Alertmanager or a pager.
	got := make(chan events.WebhookPayload, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p events.WebhookPayload
		_ = json.NewDecoder(r.Body).Decode(&p)
		got <- p
	}))
	defer srv.Close()

	bus := events.NewBus() // the bus the breakers publish on
	alerts, _ := events.NewAlertManager(events.AlertManagerConfig{})
	hook, err := events.NewWebhookHandler(events.WebhookConfig{URL: srv.URL})
	if err != nil {
		log.Fatal(err)
	}
	alerts.AddHandler(hook)
	cb, _ := events.NewCircuitBreakerAlertHandler(alerts, bus)
	cb.Start()

	bus.Publish(events.StateChange{Endpoint: "api-service", OldState: events.Closed, NewState: events.Open, Reason: "Failure threshold exceeded"})
	bus.Publish(events.StateChange{Endpoint: "api-service", OldState: events.HalfOpen, NewState: events.Closed, Reason: "probes succeeded"})

	cb.Close()
	_ = hook.Close() // sends what is queued
	for range 2 {
		p := <-got
		a := p.Alerts[0]
		fmt.Println(p.Status, a.Labels["severity"], a.Labels["endpoint"], "-", a.Annotations["description"])
	}
	// Output:
	// firing critical api-service - Circuit breaker for endpoint 'api-service' has opened: Failure threshold exceeded
	// resolved critical api-service - Circuit breaker for endpoint 'api-service' has opened: Failure threshold exceeded
}

// Alerts to Slack and to the log, fired by hand.
func ExampleNewSlackHandler() {
	alerts, _ := events.NewAlertManager(events.AlertManagerConfig{})
	slack, err := events.NewSlackHandler(events.SlackConfig{WebhookURL: os.Getenv("SLACK_WEBHOOK_URL")})
	if err != nil {
		log.Print(err) // no URL configured
		return
	}
	defer slack.Close()
	alerts.AddHandler(slack)
	logs, _ := events.NewLogHandler(events.LogConfig{Logger: slog.Default()})
	defer logs.Close()
	alerts.AddHandler(logs)

	a := alerts.Fire(events.Alert{
		Severity: events.Warning,
		Type:     events.AlertType{Message: "Disk almost full", Metadata: map[string]string{"host": "db-1"}},
		Message:  "db-1 has 3% disk space left",
	})
	alerts.Resolve(a.ID)
}

func ExampleAlertManager() {
	alerts, _ := events.NewAlertManager(events.AlertManagerConfig{History: 10})
	alerts.AddHandler(events.AlertHandlerFunc(func(a events.Alert) {
		fmt.Printf("%s resolved=%v: %s\n", a.Severity, a.Resolved, a.Message)
	}))
	a := alerts.Fire(events.Alert{Severity: events.Critical, Message: "payments down"})
	fmt.Println("active:", len(alerts.Active()))
	alerts.Resolve(a.ID)
	fmt.Println("active:", len(alerts.Active()), "recent:", len(alerts.Recent()))
	// Output:
	// Critical resolved=false: payments down
	// active: 1
	// Critical resolved=true: payments down
	// active: 0 recent: 1
}
