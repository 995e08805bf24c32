package core_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bulwark-go/bulwark/core"
)

func ExampleManager_WithTimeout() {
	m, err := core.NewManager(core.ManagerConfig{})
	if err != nil {
		panic(err)
	}
	handle := func(ctx context.Context) error {
		select {
		case <-time.After(time.Second): // the work: too slow
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	ctx := m.WithTimeout(context.Background(), 20*time.Millisecond)
	defer core.CancelTimeout(ctx)
	err = handle(ctx)
	fmt.Println(errors.Is(err, context.DeadlineExceeded))
	// Output: true
}
