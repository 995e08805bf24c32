// Package admin is Bulwark's mountable admin http.Handler: the JSON status
// of every breaker, bulkhead, per-user bulkhead, SLO and health check,
// event history, control actions, runtime settings, a WebSocket feed of
// every event, and an embedded live dashboard page.
//
// The happy path:
//
//	h, err := admin.New(admin.Config{
//		Manager: m,       // *core.Manager: breakers, bulkheads, SLOs, per-user bulkhead
//		Health:  monitor, // *health.Monitor, optional
//		Alerts:  alerts,  // *alert.Manager, optional
//		Token:   os.Getenv("BULWARK_ADMIN_TOKEN"),
//	})
//	if err != nil {
//		return err
//	}
//	defer h.Close(context.Background())
//	mux.Handle("/admin/", http.StripPrefix("/admin", h))
//	// open http://host/admin/ for the dashboard
//
// New reports every bad field of the Config at once, each a
// *core.ConfigError naming it ("admin.Config.Token").
//
// # Mounting
//
// The handler routes on the path below its mount point. Behind
// http.StripPrefix it sees paths relative to it; routers that pass the
// full path through set Config.Prefix instead. The dashboard derives every
// URL from its own location, so any prefix works:
//
//	// net/http
//	mux.Handle("/admin/", http.StripPrefix("/admin", h))
//	// chi: Mount passes the full path, so admin.Config{Prefix: "/admin", ...}
//	r.Mount("/admin", h)
//	// echo
//	e.Any("/admin/*", echo.WrapHandler(http.StripPrefix("/admin", h)))
//	// gin
//	g.Any("/admin/*any", gin.WrapH(http.StripPrefix("/admin", h)))
//
// The routes:
//
//	GET    …/                     the dashboard page (…/ui/app.js, …/ui/app.css)
//	GET    …/status               everything, as JSON
//	GET    …/status/{endpoint}    one endpoint, with its settings; the name URL-escaped ("GET%20%2Fusers%2F%7Bid%7D")
//	GET    …/history[?endpoint=E] the last 15 minutes of each endpoint, sampled every Config.SnapshotInterval
//	GET    …/events[?since=N]     {"seq":N,"events":[...]}: the last Config.EventHistory feed messages
//	GET    …/ws                   the WebSocket feed
//	POST   …/breakers/{endpoint}  {"action":"force_open|close|reset|disable","reason":"..."}
//	PUT    …/config/{endpoint}    a settings patch, as the configuration file's section for the endpoint
//	DELETE …/config/{endpoint}    back to the file's settings
//	GET    …/faults               the running fault experiments and the limits
//	POST   …/faults               {"endpoint":"GET /x","percent":50,"status":500,"duration":"20s"}: start one
//	DELETE …/faults/{id}          end one early
//
// In the status, each breaker is a core.Snapshot plus "retry_after_seconds"
// (a component's hold shows as "held_by" and "hold_until"), each SLO a
// core.SLOStatus whose "error_budget_remaining" is a ratio (1 is the whole
// budget), each health check a health.Status, and "per_user" is the
// Manager's per-user bulkhead (null without one) with its busiest
// Config.TopUsers users, the only place user IDs appear. With a
// shared-state store that lists its members, "cluster" holds the
// instances it last reported: {"instances":[{"id","last_seen","healthy",
// "self","shares":{endpoint: share of the window}}]}.
//
// # History
//
// GET …/history gives, per endpoint, one sample every
// Config.SnapshotInterval over the last 15 minutes (at most 900 samples;
// fewer minutes when the interval is under a second): the request rate,
// the share of failed requests in percent and the 99th percentile latency
// of the interval, the breaker's state at the sample and the injected
// failures. Fault experiments seen on the bus are spans, "end" null while
// they run. ?endpoint= keeps one endpoint. It follows the status's read
// rule.
//
//	{"interval_ms":2000,"window_seconds":900,
//	 "endpoints":{"GET /x":{"t":[unix_ms...],"rate":[...],"failure_pct":[...],
//	   "p99_ms":[...],"state":["Closed",...],"injected":[...]}},
//	 "faults":[{"id":"...","endpoint":"GET /x","start":unix_ms,"end":null}]}
//
// # Runtime settings
//
// With Config.Settings set (a *bulwark.Kit implements it), GET
// …/status/{endpoint} adds "settings", the endpoint's settings in effect,
// and "settings_source" ("default", "file" or "runtime"). PUT
// …/config/{endpoint} with a JSON object (at most 64 KiB) changes only the
// keys it gives, such as {"breaker":{"failure_threshold":10}}; DELETE
// returns the endpoint to the file's settings. Both answer the settings
// now in effect. A refused patch is a 400 whose "error" holds every
// message and whose "problems" list each bad field:
//
//	{"error":"...","problems":[{"field":"...","rule":"...","message":"..."}]}
//
// Any other failure is a 503. Each change reaches the feed as a
// "config_change" event.
//
// # Fault injection
//
// With core.ManagerConfig.Faults set, GET …/faults answers
//
//	{"enabled":true,"default_duration":"10m0s","max_duration":"1h0m0s","faults":[F,...]}
//
// where each running experiment F is
//
//	{"id":"9f86d081884c7d65","endpoint":"GET /x","percent":50,"latency":"200ms","latency_max":"",
//	 "status":500,"abort":false,"header":"X-Chaos","header_value":"(set)","user":"",
//	 "ends":"2025-10-08T12:10:00Z","remaining_seconds":12,"reason":"game day","origin":"","injected":34}
//
// ("enabled" is false, and the list empty, while fault injection is off).
// The values of the header_value and user filters are shown only to a
// request with the token; others see "(set)". POST …/faults starts an
// experiment from a strict JSON body (at most 4 KiB) with the keys
// endpoint, percent, status, abort, latency, latency_max and duration
// (strings such as "250ms"), header, header_value, user and reason, and
// answers 201 with F; a refused body is a 400 with "problems" naming each
// key at fault, as for settings, and one experiment more than
// FaultLimits.MaxFaults a 409. DELETE …/faults/{id} ends one early and
// answers 200 with F (404 for an ID not running). Both need the token, and
// answer 404 while fault injection is off. GET …/status lists the running
// experiments as "faults", GET …/status/{endpoint} those on the endpoint,
// and each breaker's "injected_failures" counts the failures they made.
// Their starts and ends reach the feed as "fault_start" and "fault_end"
// events (see events.FaultChange).
//
// # Security
//
// Control, settings and starting or stopping fault experiments are off
// until Config.Token is set (16 to 1,024 bytes); their routes answer 403
// naming the field until then, and 401 for a missing or wrong token,
// which is compared in constant time. Once a token is set, it guards
// status, events, faults and the feed too, unless
// Config.PublicRead is set. Without a token every read is public: mount
// the handler behind your own authentication, or on an internal listener.
// Bodies are size-limited (4 KiB for control) and decoded strictly.
//
// Programs send the token as "Authorization: Bearer <token>". A browser
// cannot set that header on a WebSocket, so the page offers two
// subprotocols: "bulwark.v1" and "bulwark.token." followed by the token in
// unpadded base64url, as in "bulwark.token.czNjcmV0LXRva2Vu"; the server
// selects "bulwark.v1" and never echoes the token. (A query parameter
// would leak the token into access logs.) The feed accepts browser
// connections from the page's own host and from Config.OriginPatterns
// only.
//
// # The feed
//
// Every feed message is one JSON object with a "type". On connect the
// feed sends a snapshot, {"type":"snapshot","seq":N,...} with the fields
// of GET …/status, then every event from the Manager's bus (and from
// breakers given to MonitorBreaker), and a fresh snapshot every
// Config.SnapshotInterval (2s by default) whose "sample" holds each
// endpoint's newest history sample. A breaker transition is an
// events.StateChange's JSON with "type" and "seq" added:
//
//	{"endpoint":"api-service","old_state":"Closed","new_state":"Open",
//	 "timestamp":"2025-10-08T12:00:00Z","reason":"Failure threshold exceeded",
//	 "type":"state_change","seq":42}
//
// Other events carry their own "type": "config_change", "alert",
// "slo_burn", "store_status", ... Event sequence numbers rise by one, so a
// client that sees a jump knows it missed events; a snapshot carries the
// seq of the last event it includes. Each subscriber has a bounded buffer
// (Config.SubscriberBuffer, 64 messages by default); one that falls behind
// is disconnected rather than waited for: closed with
// StatusPolicyViolation, or cut off if the server is stuck writing to it.
// The number of subscribers is bounded (Config.MaxSubscribers, 64 by
// default; 503 past it), and idle connections are pinged every
// Config.PingInterval. Close tells every client the server is going away.
//
// Register gives the same event messages to code, without a WebSocket,
// and MonitorBreaker follows a breaker made outside the Manager:
//
//	b, _ := core.NewBreaker(core.BreakerConfig{Name: "api-service"})
//	h.MonitorBreaker(b)
//	rx, _ := h.Register(ctx)
//	for msg := range rx.C() {
//		fmt.Printf("state change: %s\n", msg)
//	}
//	// rx.Err() says why it ended
//
// # Control
//
// Close and reset are the same action, core.Breaker.Reset: back to Closed
// with a fresh window. When Config.Cluster is set (a *store.RedisStore),
// actions go through it and apply on every instance.
package admin
