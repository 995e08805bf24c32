package store_test

import (
	"context"
	"log"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwark-go/bulwark/alert"
	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
	"github.com/bulwark-go/bulwark/store"
)

// Every instance of a service attaches its Manager to a RedisStore on the
// same Redis: a breaker that opens on one instance opens on all of them,
// and the failure-rate threshold counts the calls of the whole cluster.
func ExampleNewRedisStore() {
	client := redis.NewClient(&redis.Options{
		Addr: "localhost:6379",
		// Let the store's timeouts bound every call.
		ContextTimeoutEnabled: true,
		DialTimeout:           time.Second,
		ReadTimeout:           500 * time.Millisecond,
		WriteTimeout:          500 * time.Millisecond,
	})
	defer client.Close()

	m, err := core.NewManager(core.ManagerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	shared, err := store.NewRedisStore(store.RedisConfig{
		Client:       client,
		InstanceID:   "web-1",     // unique per instance; random when empty
		SyncInterval: time.Second, // how stale a missed update can leave an instance
	})
	if err != nil {
		log.Fatal(err)
	}
	defer shared.Close(context.Background())
	if err := shared.AttachManager(m); err != nil {
		log.Fatal(err)
	}

	// One alert per cluster transition: in cluster mode the alert manager
	// fires on the ClusterStateChange of the instance that won the
	// transition, not on the StateChange every instance sees.
	alerts, err := alert.NewManager(alert.ManagerConfig{Bus: m.Bus(), ClusterAlerts: true})
	if err != nil {
		log.Fatal(err)
	}
	defer alerts.Close(context.Background())

	// Redis outages and rejected payloads are events too.
	sub := m.Bus().Subscribe(64)
	defer sub.Close()
	go func() {
		for e := range sub.C() {
			if st, ok := e.(events.StoreStatus); ok {
				log.Printf("%s store %s: %s", st.Store, st.Status, st.Error)
			}
		}
	}()

	e, err := m.Endpoint("api-service")
	if err != nil {
		log.Fatal(err)
	}
	b := e.Breaker()
	b.RecordFailure() // counted here and, within SyncInterval, cluster-wide

	// Cluster-wide manual control, as the admin handler does it.
	if err := shared.ForceOpen(context.Background(), "api-service", "maintenance"); err != nil {
		log.Print(err) // errors.Is(err, store.ErrRedisUnavailable): this instance only
	}
}
