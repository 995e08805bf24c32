package core_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/bulwark-go/bulwark/core"
)

func ExampleBulkhead() {
	b, err := core.NewBulkhead(core.BulkheadConfig{
		Name:                  "GET /orders",
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
			return err // a *RejectedError (ErrBulkheadFull, ErrBulkheadTimeout) or ctx.Err()
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
	var rejected *core.RejectedError
	if errors.As(err, &rejected) {
		fmt.Println("full:", errors.Is(err, core.ErrBulkheadFull), "retry after", rejected.RetryAfter())
	}
	g1.Release()
	g2.Release()

	st := b.Stats()
	fmt.Printf("active=%d total=%d admitted=%d rejected=%d\n", st.Active, st.Total, st.Admitted, st.Rejected)
	// Output:
	// request: <nil>
	// full: true retry after 1s
	// active=0 total=4 admitted=3 rejected=1
}

func ExampleNewPerUserBulkhead() {
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
	fmt.Println("no user:", status(""))

	st, _ := p.UserStats("alice")
	fmt.Printf("alice: total=%d rejected=%d; users tracked: %d\n", st.Total, st.Rejected, p.Stats().Users)
	// Output:
	// alice: 429
	// bob: 200
	// alice: 200
	// no user: 400
	// alice: total=3 rejected=1; users tracked: 2
}

// A Manager's per-user bulkhead is shared by every endpoint.
func ExampleManager_PerUser() {
	m, _ := core.NewManager(core.ManagerConfig{
		PerUser: &core.PerUserConfig{Bulkhead: core.BulkheadConfig{MaxConcurrentRequests: 4}},
	})
	g, err := m.PerUser().Acquire(context.Background(), "alice")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer g.Release()
	st, _ := m.PerUser().UserStats("alice")
	fmt.Println(st.Active, "of", st.MaxConcurrent)
	// Output: 1 of 4
}
