// Package admin is Bulwark's mountable admin http.Handler: JSON status of
// every breaker, bulkhead, per-user bulkhead, SLO and health check, event
// history, control actions, a WebSocket feed of every event, and an
// embedded live dashboard page.
//
// The happy path:
//
//	h, err := admin.New(admin.Config{Manager: m, Token: os.Getenv("BULWARK_ADMIN_TOKEN")})
//	if err != nil { return err }
//	defer h.Close()
//	mux.Handle("/admin/", http.StripPrefix("/admin", h))
//	// open http://host/admin/ for the dashboard
//
// # Mounting
//
// The handler routes on the path below its mount point. Mount it behind
// http.StripPrefix (standard mux, echo, gin), or set Config.Prefix when the
// router passes the full path through (chi's Mount). The dashboard derives
// every URL from its own location, so any prefix works. The routes:
//
//	GET  …/                    the dashboard page (…/ui/app.js, …/ui/app.css)
//	GET  …/status              Status: everything, as JSON
//	GET  …/status/{endpoint}   EndpointStatus; the name URL-escaped ("GET%20%2Fusers%2F%7Bid%7D")
//	GET  …/events[?since=N]    EventsResponse: the last EventHistory feed messages
//	GET  …/ws                  the WebSocket feed
//	POST …/breakers/{endpoint} a ControlRequest: {"action":"force_open","reason":"..."}
//
// # Security
//
// Control is off until Config.Token is set (at least 16 bytes); the control
// route answers 403 naming the field until then, and 401 for a missing or
// wrong token, which is compared in constant time. Once a token is set, it
// guards status, events and the feed too (per-user stats name users),
// unless Config.PublicRead is set. Without a token every read is public:
// mount the handler behind your own authentication, or on an internal
// listener. Bodies are limited to MaxBodyBytes and decoded strictly.
//
// Programs send the token as "Authorization: Bearer <token>". A browser
// cannot set that header on a WebSocket, so the page offers two
// subprotocols: Subprotocol ("bulwark.v1") and TokenSubprotocolPrefix
// followed by the token in unpadded base64url; the server selects
// "bulwark.v1" and never echoes the token. (A query parameter would leak
// the token into access logs.) The feed accepts browser connections from
// the page's own host and from Config.OriginPatterns only.
//
// # The feed
//
// On connect the feed sends a snapshot, {"type":"snapshot","seq":N,...}
// with the Status fields, then every event from the Manager's bus (and from
// breakers given to MonitorBreaker), and a fresh snapshot every
// SnapshotInterval. A breaker transition is the seed's JSON with "type" and
// "seq" added:
//
//	{"endpoint":"api-service","old_state":"Closed","new_state":"Open",
//	 "timestamp":"2025-10-08T12:00:00Z","reason":"Failure threshold exceeded",
//	 "type":"state_change","seq":42}
//
// Other events carry their own "type" ("alert", "slo_burn", ...). Event
// sequence numbers rise by one, so a client that sees a jump knows it
// missed events; a snapshot carries the seq of the last event it includes.
// Each subscriber has a bounded buffer; one that falls behind is
// disconnected rather than waited for: closed with StatusPolicyViolation,
// or cut off if the server is stuck writing to it. The number of
// subscribers is bounded (503 past it), and idle connections are pinged
// every PingInterval.
//
// Close and reset are the same action, core.Breaker.Reset: back to Closed
// with a fresh window. When Config.Cluster is set (a *store.RedisStore),
// actions go through it and apply on every instance.
package admin
