package store

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any leaves a goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The system clock's coarse ticker stops itself after a second idle.
		goleak.IgnoreTopFunction("github.com/bulwark-go/bulwark/core.(*sysClock).tick"),
		// go-redis probes a pool that failed to dial once a second, and
		// sees only then that its client was closed.
		goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial"),
	)
}
