// Package store keeps circuit breaker state outside the process: in a file,
// so that it survives a restart (FileStore), and in Redis, so that several
// instances share it (RedisStore). A service may use either or both.
//
// # The happy path
//
// Attach the stores to the Manager before the breakers take calls, the
// file store first, so that every breaker is restored before the Redis
// store compares it with the cluster's state:
//
//	m, err := core.NewManager(core.ManagerConfig{})
//	...
//	files, err := store.NewFileStore(store.FileConfig{Path: "/var/lib/app/breakers.state"})
//	...
//	if err := files.LoadErr(); err != nil {
//		log.Print(err) // the file was moved aside; the breakers start Closed
//	}
//	err = files.AttachManager(m) // restores each breaker before its first use
//
//	shared, err := store.NewRedisStore(store.RedisConfig{
//		Client: redis.NewClient(&redis.Options{
//			Addr:                  "redis:6379",
//			ContextTimeoutEnabled: true, // the store's timeouts bound every call
//		}),
//		InstanceID: hostname, // unique per instance
//	})
//	...
//	err = shared.AttachManager(m) // shares every breaker, now and later
//
// Close them, and whatever else makes transitions (the HTTP server,
// health monitors), in any order: the end state is the same. A store that
// closes ends the holds of this process's components in what it saves and
// shares, since their owners stop with the process, so a health monitor's
// hold comes back HalfOpen after a restart and is HalfOpen in the cluster
// whether the monitor, the Redis store or the file store stopped first.
// The Redis store proposes the transitions it still holds and leaves the
// cluster's windows and probe slots; the file store saves the final state:
//
//	defer files.Close(ctx)
//	defer shared.Close(ctx)
//
// Both Close methods wait within ctx and may be called again.
//
// # File persistence
//
// A FileStore saves on every transition, without slowing the call that
// caused it: the transition only wakes a writer goroutine, which coalesces
// what comes while it writes and saves the latest state. It saves again on
// Close and, when FileConfig.Interval is set, periodically. Writes are
// atomic (temporary file, fsync, rename, fsync of the folder), so a crash
// leaves the old file or the new one.
//
// On start, a breaker that was Open comes back Open for what remained of its
// open time only, and HalfOpen if that time passed while the process was
// down. A breaker held by a component (core.Breaker.Hold, as a health
// monitor holds it) comes back held by the same owner for what remained
// of its lease, so that the owner, started again, takes it over, and
// HalfOpen if the lease ran out meanwhile; an operator's hold (ForceOpen)
// comes back until someone releases it. The other states and the lifetime
// counts come back as saved, and a Closed breaker keeps its run of
// consecutive failures. FileStore.AttachManager creates the Manager's
// endpoint for every saved breaker, so that status and metrics show the
// restored breakers before any call. A missing file is a fresh start. A file that cannot be read or decoded is never fatal and
// never deleted: it is renamed to "<path>.corrupt-<UTC timestamp>", a warning
// is logged, FileStore.LoadErr returns a *LoadError naming the file and the
// cause (errors.Is(err, ErrCorrupt) for bad content), the breakers start
// Closed and a fresh file is written. Records that the Manager refuses
// (past ManagerConfig.MaxEndpoints) are logged, kept, and applied if it
// creates their endpoints later.
//
// A saved hold's lease is the one it had at the breaker's last transition
// or periodic save: set FileConfig.Interval to keep the renewals of a
// long-lived hold fresh in the file.
//
// The file is versioned and checksummed; docs/state-file.md in the
// repository describes it byte by byte, and how files of older versions
// load.
//
// # Settings changed at runtime
//
// Both stores keep the documents that describe runtime changes of an
// endpoint's settings (Override), without reading them: whoever makes the
// changes gives their meaning. FileStore.SetOverride keeps one in the
// file, saved like a transition, and FileStore.Overrides lists them after
// a restart. RedisStore.PutOverride shares one with the cluster under the
// next version; every other instance's RedisConfig.OnOverride hears of it
// within milliseconds, or within one SyncInterval if the message was lost,
// in version order, never an older change after a newer one; and
// RedisStore.Overrides lists the cluster's, for an instance that starts:
//
//	shared, err := store.NewRedisStore(store.RedisConfig{
//		Client:     client,
//		OnOverride: func(o store.Override) { apply(o); files.SetOverride(o) },
//	})
//	...
//	list, err := shared.Overrides(ctx) // the cluster's, at start
//	...
//	o, err := shared.PutOverride(ctx, store.Override{Endpoint: "api", Settings: doc})
//	if err != nil {
//		return err // errors.Is(err, store.ErrRedisUnavailable): not shared
//	}
//	apply(o)
//	files.SetOverride(o)
//
// A shared change has no TTL: it outlives restarts of every instance.
//
// # Shared state
//
// A RedisStore shares transitions (decided by a compare-and-set, applied by
// every instance within milliseconds), the rolling window's counts (so that
// a failure rate crossed by the cluster opens every instance's breaker) and
// the half-open probe budget. The request path never waits for Redis. An
// endpoint's shared state expires RedisConfig.TTL (one hour) after its last
// write or sync.
//
// No hold outlives its owner. A component's hold is shared with its owner
// and lease: every instance applies it, the owner's renewals reach the
// cluster, and when the owner stops renewing (its process died, say) the
// cluster's breaker goes HalfOpen within the lease and one SyncInterval,
// by one transition. An operator's hold never lapses. Probe slots are
// leases too: an instance renews its claim every SyncInterval, and the
// slots of one silent for the endpoint's ProbeTimeout go back to the
// others.
//
// Fault experiments are shared too: one started on an instance (with
// fault injection on, after AttachManager) runs on every instance, with
// the starter's InstanceID as its Origin, and one stopped on any instance
// ends on all of them; each ends by itself at its end, in Redis too. And
// every instance keeps a heartbeat in Redis, from which the store
// publishes the instances every few seconds, as an events.StoreStatus
// "members" that the admin handler's cluster view shows.
//
// While Redis is unreachable, the breakers decide on local state, the file
// store keeps saving, and the store says so once: a warning and an
// events.StoreStatus "degraded" event that name the cause in words
// (connection refused, timeout, authentication failed, DNS, ...). When
// Redis answers again, the store reconciles every endpoint by version,
// logs once and publishes a "recovered" event.
//
// go-redis logs by itself too, through one logger shared by every client
// in the process: a line for each connection it fails to open ("connection
// pool: failed to dial"), up to the client's PoolSize lines per outage. The
// store leaves that logger alone, since changing it would change it for
// every client the program has. To route or silence those lines, call
// redis.SetLogger once when the program starts.
//
// # Tests
//
// The breakers' clock times restored open states, and the stores' own
// timers (periodic saves, retries, sync rounds, reconnection backoff) run on
// FileConfig.Clock and RedisConfig.Clock, so tests of restarts drive both
// with one core.FakeClock and never sleep.
package store
