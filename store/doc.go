// Package store keeps circuit breaker state outside the process: in a file,
// so that it survives a restart (FileStore), and in Redis, so that several
// instances share it.
//
// # File persistence
//
// The happy path:
//
//	m, err := core.NewManager(core.ManagerConfig{})
//	fs, err := store.NewFileStore(store.FileConfig{Path: "/var/lib/app/breakers.state"})
//	err = fs.AttachManager(m) // restores each breaker before its first use
//	defer fs.Close(context.Background()) // saves the final state
//	b, err := m.Breaker("GET /users/{id}")
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
// Restored open times are measured on the breakers' clock, and the store's
// own timers (FileConfig.Interval, retries after a failed save) on the clock
// given by FileConfig.Clock, so tests of restarts use a core.FakeClock and never
// sleep.
//
// # File format
//
// A state file is a header, the records, and a checksum. Every integer is
// big-endian; counts are signed 64-bit integers that must not be negative.
//
//	offset  size  field
//	0       8     magic "BWKSTATE"
//	8       2     format version, 1
//	10      2     reserved, 0
//	12      4     record count n (at most 1,000,000)
//	16      ...   n records, each a 4-byte length L then L bytes
//	end-4   4     CRC-32C (Castagnoli) of every byte before it
//
// A record (version 1) holds one breaker, 87 to 1366 bytes:
//
//	size  field
//	1     state: 0 Closed, 1 Open, 2 HalfOpen, 3 ForcedOpen, 4 Disabled
//	1     flags, 0
//	2     endpoint length N, 1 to 256
//	N     endpoint, UTF-8 (core.ValidateEndpoint)
//	2     reason length R, 0 to 1024
//	R     reason the breaker entered its state, UTF-8
//	12    last state change: Unix seconds (8), nanoseconds (4)
//	12    open until, same form; the zero time unless the state is Open
//	8     consecutive failures
//	8     consecutive successes
//	8     total requests
//	8     successful requests
//	8     failed requests (successful + failed = total)
//	8     rejected requests
//	8     slow requests (at most total)
//
// A time is Unix seconds from -62135596800 to 253402300799 (the years 1 to
// 9999) and nanoseconds below 10^9; the zero time, "unset", is stored as
// Go's zero time, -62135596800 seconds and 0 nanoseconds. Records are
// sorted by endpoint, with no repeats. The decoder accepts nothing else: a
// wrong magic, version or checksum, a length out of bounds, an invalid field
// or a stray byte make the whole file corrupt, so a file that decodes is
// exactly what some encoder wrote. A new version number will mark any change
// to this layout.
package store
