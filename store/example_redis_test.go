package store_test

import (
	"context"
	"log"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
	"github.com/bulwark-go/bulwark/store"
)

// Every instance of a service attaches its Manager to a RedisStore on the
// same Redis: a breaker that opens on one instance opens on all of them,
// and the failure-rate threshold counts the calls of the whole cluster.
// (The seed's with_distributed_state("redis://localhost:6379").)
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
	shared, err := store.NewRedisStore(client, store.RedisConfig{
		InstanceID:   "web-1",     // unique per instance; random when empty
		SyncInterval: time.Second, // how stale a missed update can leave an instance
	})
	if err != nil {
		log.Fatal(err)
	}
	defer shared.Close(context.Background())
	shared.AttachManager(m)

	// One alert per cluster transition: with a shared store, alert on
	// ClusterStateChange (published by the instance that won the
	// transition), not on StateChange (seen by every instance).
	sub := m.Bus().Subscribe(64)
	go func() {
		for e := range sub.C() {
			switch e := e.(type) {
			case events.ClusterStateChange:
				log.Printf("cluster: %s %s -> %s (%s)", e.Endpoint, e.OldState, e.NewState, e.Reason)
			case events.StoreStatus:
				log.Printf("redis store %s: %s", e.Status, e.Error)
			}
		}
	}()

	b, err := m.Breaker("api-service")
	if err != nil {
		log.Fatal(err)
	}
	b.RecordFailure() // counted here and, within SyncInterval, cluster-wide

	// Cluster-wide manual control, as the admin handler does it.
	if err := shared.ForceOpen(context.Background(), "api-service", "maintenance"); err != nil {
		log.Print(err) // errors.Is(err, store.ErrRedisUnavailable): this instance only
	}
}
