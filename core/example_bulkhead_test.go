package core_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/bulwark-go/bulwark/core"
)

func ExampleBulkhead() {
	b, err := core.NewBulkhead("GET /orders", core.BulkheadConfig{
		MaxConcurrentRequests: 2,
		MaxQueueSize:          core.NoQueue, // reject at once when full
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	handle := func(ctx context.Context) error {
		g, err := b.Acquire(ctx)
		if err != nil {
			return err // ErrBulkheadFull, ErrBulkheadTimeout or ctx.Err()
		}
		defer g.Release() // also runs if the handler panics
		// ... serve the request ...
		return nil
	}
	fmt.Println("request:", handle(context.Background()))

	// Hold both slots: the next call is turned away.
	g1, _ := b.TryAcquire()
	g2, _ := b.TryAcquire()
	err = handle(context.Background())
	fmt.Println("full:", errors.Is(err, core.ErrBulkheadFull))
	g1.Release()
	g2.Release()

	st := b.Stats()
	fmt.Printf("active=%d total=%d admitted=%d rejected=%d\n", st.Active, st.Total, st.Admitted, st.Rejected)
	// Output:
	// request: <nil>
	// full: true
	// active=0 total=4 admitted=3 rejected=1
}

func ExamplePerUserBulkhead() {
	p, err := core.NewPerUserBulkhead(core.PerUserConfig{
		Bulkhead: core.BulkheadConfig{MaxConcurrentRequests: 1, MaxQueueSize: core.NoQueue},
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	status := func(user string) int {
		g, err := p.TryAcquire(user)
		switch {
		case errors.Is(err, core.ErrBulkheadFull), errors.Is(err, core.ErrTooManyUsers):
			return http.StatusTooManyRequests
		case err != nil:
			return http.StatusBadRequest // empty or oversized user ID
		}
		defer g.Release()
		return http.StatusOK
	}

	busy, _ := p.TryAcquire("alice") // alice has a request in flight
	fmt.Println("alice:", status("alice"))
	fmt.Println("bob:", status("bob")) // bob is not held up by alice
	busy.Release()
	fmt.Println("alice:", status("alice"))

	st, _ := p.UserStats("alice")
	fmt.Printf("alice: total=%d rejected=%d; users tracked: %d\n", st.Total, st.Rejected, p.Users())
	// Output:
	// alice: 429
	// bob: 200
	// alice: 200
	// alice: total=3 rejected=1; users tracked: 2
}
