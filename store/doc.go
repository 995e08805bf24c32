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
// Close them in the opposite order, once whatever makes transitions (the
// HTTP server, health monitors) has stopped: the Redis store first, which
// proposes the transitions it still holds and leaves the cluster's windows,
// then the file store, which saves the final state, including anything the
// cluster decided meanwhile:
//
//	err = shared.Close(ctx)
//	err = files.Close(ctx)
//
// With defer, that is defer files.Close(ctx) before defer
// shared.Close(ctx). Both Close methods wait within ctx and may be called
// again.
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
// down. The other states and the lifetime counts come back as saved, and a
// Closed breaker keeps its run of consecutive failures. A missing file
// is a fresh start. A file that cannot be read or decoded is never fatal and
// never deleted: it is renamed to "<path>.corrupt-<UTC timestamp>", a warning
// is logged, FileStore.LoadErr returns a *LoadError naming the file and the
// cause (errors.Is(err, ErrCorrupt) for bad content), the breakers start
// Closed and a fresh file is written. Records of endpoints that a Manager has
// not created yet are kept and applied when it does.
//
// The file is versioned and checksummed; docs/state-file.md in the
// repository describes it byte by byte, and how files of older versions
// load.
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
