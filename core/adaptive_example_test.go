package core_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bulwark-go/bulwark/core"
)

func ExampleAdaptiveLimiter() {
	l, err := core.NewAdaptiveLimiter(core.AdaptiveConfig{
		Name:           "GET /search",
		MaxLatency:     2 * time.Second,        // never healthy above this, whatever the baseline
		PriorityShares: []float64{0.5, 0.9, 1}, // batch, interactive, health checks
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	const interactive = 1
	handle := func(ctx context.Context) error {
		p, err := l.Acquire(ctx, interactive)
		if err != nil {
			return err // a *RejectedError matching ErrLimitExceeded, or ctx.Err()
		}
		start := time.Now()
		err = search(ctx)
		outcome := core.Success
		switch {
		case ctx.Err() != nil:
			outcome = core.Ignored // the caller left: the latency means nothing
		case err != nil:
			outcome = core.Failure
		}
		p.Done(outcome, time.Since(start))
		return err
	}
	fmt.Println("request:", handle(context.Background()))

	// Fill the limit with batch work: batch stops at half the limit,
	// interactive calls still get in.
	var batch []core.AdaptivePermit
	for {
		p, err := l.TryAcquire(0)
		if err != nil {
			var rejected *core.RejectedError
			errors.As(err, &rejected)
			fmt.Println("batch shed:", errors.Is(err, core.ErrLimitExceeded), "retry after", rejected.RetryAfter())
			break
		}
		batch = append(batch, p)
	}
	fmt.Println("batch admitted:", len(batch), "of limit", l.Stats().Limit)
	fmt.Println("interactive:", handle(context.Background()))
	for i := range batch {
		batch[i].Done(core.Success, 20*time.Millisecond)
	}

	st := l.Stats()
	fmt.Printf("in flight %d, admitted %d, shed by priority %v\n", st.InFlight, st.Admitted, st.Shed)
	// Output:
	// request: <nil>
	// batch shed: true retry after 50ms
	// batch admitted: 10 of limit 20
	// interactive: <nil>
	// in flight 0, admitted 12, shed by priority [1 0 0]
}

func search(context.Context) error { return nil }
