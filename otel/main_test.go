package bulwarkotel

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a test starts must end with it. The system clock's ticker
// is the exception: it lives until about a second after its last reader.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/bulwark-go/bulwark/core.(*sysClock).tick"))
}
