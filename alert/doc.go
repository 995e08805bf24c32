// Package alert raises alerts from Bulwark's events and delivers them.
//
// A Manager keeps the active and recent alerts and hands each one fired or
// resolved to its handlers. Given the Bus the breakers publish on, it
// raises the alerts itself: Critical when a breaker opens, resolved when it
// closes, one per endpoint at a time, a Warning while an SLO's error
// budget burns too fast, and an Info while a fault experiment runs. The log, webhook and Slack handlers send through
// bounded queues, with a timeout per attempt and bounded retries that
// honour 429 and Retry-After, so that a dead receiver never blocks anyone:
//
//	m, _ := core.NewManager(core.ManagerConfig{})
//	slack, err := alert.NewSlackHandler(alert.SlackConfig{
//		WebhookURL: os.Getenv("SLACK_WEBHOOK_URL"),
//	})
//	if err != nil {
//		return err // a *core.ConfigError for every bad field
//	}
//	alerts, err := alert.NewManager(alert.ManagerConfig{
//		Bus:      m.Bus(),
//		Handlers: []alert.Handler{slack},
//	})
//	if err != nil {
//		return err
//	}
//	// ... serve ...
//
//	// On shutdown: the Manager first, so that its last alerts are queued,
//	// then the handlers, which send what is queued within ctx.
//	_ = alerts.Close(ctx)
//	_ = slack.Close(ctx)
//
// With a shared-state store (store.RedisStore) set ManagerConfig.ClusterAlerts,
// so that one cluster transition is one alert, however many instances saw it.
//
// Alerts can also be fired by hand (Manager.Fire, Manager.Resolve), and any
// type with a HandleAlert method, or a HandlerFunc, is a handler. The admin
// handler lists the Manager's active alerts (admin.Config.Alerts).
package alert
