package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/bulwark-go/bulwark/admin"
	"github.com/bulwark-go/bulwark/core"
)

// Mount the admin handler under /admin/ of a standard mux. Behind
// http.StripPrefix the handler sees paths relative to its mount point.
func Example() {
	m, _ := core.NewManager(core.ManagerConfig{})
	e, _ := m.Endpoint("GET /users/{id}")

	h, err := admin.New(admin.Config{
		Manager: m,
		Token:   "change-me-to-a-long-random-token", // enables control; guards reads too
	})
	if err != nil {
		panic(err)
	}
	defer h.Close(context.Background())
	mux := http.NewServeMux()
	mux.Handle("/admin/", http.StripPrefix("/admin", h))

	srv := httptest.NewServer(mux)
	defer srv.Close()

	// Force the breaker open through the control API…
	req, _ := http.NewRequest("POST", srv.URL+"/admin/breakers/GET%20%2Fusers%2F%7Bid%7D",
		strings.NewReader(`{"action":"force_open","reason":"maintenance"}`))
	req.Header.Set("Authorization", "Bearer change-me-to-a-long-random-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println("control:", resp.Status)
	fmt.Println("breaker:", e.Breaker().State())

	// …and read it back from the status.
	req, _ = http.NewRequest("GET", srv.URL+"/admin/status", nil)
	req.Header.Set("Authorization", "Bearer change-me-to-a-long-random-token")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var st struct {
		Breakers []struct {
			Endpoint, State, Reason string
		}
	}
	_ = json.NewDecoder(resp.Body).Decode(&st)
	fmt.Println("status:", st.Breakers[0].Endpoint, st.Breakers[0].State, st.Breakers[0].Reason)
	// Output:
	// control: 200 OK
	// breaker: ForcedOpen
	// status: GET /users/{id} ForcedOpen forced open: maintenance
}

// Routers that pass the full path through, such as chi's Mount, set
// Config.Prefix instead of wrapping the handler in http.StripPrefix:
//
//	r := chi.NewRouter()
//	r.Mount("/admin", h) // with admin.Config{Prefix: "/admin", ...}
//
// echo and gin wrap it:
//
//	e.Any("/admin/*", echo.WrapHandler(http.StripPrefix("/admin", h)))
//	g.Any("/admin/*any", gin.WrapH(http.StripPrefix("/admin", h)))
func ExampleConfig_prefix() {
	m, _ := core.NewManager(core.ManagerConfig{})
	h, _ := admin.New(admin.Config{Manager: m, Prefix: "/ops/admin"})
	defer h.Close(context.Background())

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/ops/admin/status", nil))
	fmt.Println(rec.Code)
	// Output: 200
}

// Follow a breaker made outside the Manager and receive its transitions
// as JSON in code, without a WebSocket.
func ExampleHandler_Register() {
	m, _ := core.NewManager(core.ManagerConfig{})
	h, _ := admin.New(admin.Config{Manager: m})
	defer h.Close(context.Background())

	b, _ := core.NewBreaker(core.BreakerConfig{Name: "api-service"})
	h.MonitorBreaker(b)

	rx, _ := h.Register(context.Background())
	defer rx.Close()

	b.Trip("Failure threshold exceeded")
	var msg struct {
		Type     string `json:"type"`
		Seq      uint64 `json:"seq"`
		Endpoint string `json:"endpoint"`
		OldState string `json:"old_state"`
		NewState string `json:"new_state"`
		Reason   string `json:"reason"`
	}
	_ = json.Unmarshal(<-rx.C(), &msg)
	fmt.Printf("%s #%d %s: %s -> %s (%s)\n", msg.Type, msg.Seq, msg.Endpoint, msg.OldState, msg.NewState, msg.Reason)
	// Output: state_change #1 api-service: Closed -> Open (Failure threshold exceeded)
}
