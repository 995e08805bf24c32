package core_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/bulwark-go/bulwark/core"
)

func ExampleRateLimiter() {
	clock := core.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	l, err := core.NewRateLimiter(core.RateLimitConfig{
		Name:  "POST /orders",
		Rate:  10, // calls per second, on average
		Burst: 3,  // calls at once after a quiet spell
		Clock: clock,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for i := range 4 {
		err := l.Allow()
		var rejected *core.RejectedError
		if errors.As(err, &rejected) {
			fmt.Printf("call %d: %v, retry after %v\n", i, errors.Is(err, core.ErrRateLimited), rejected.RetryAfter())
			continue
		}
		fmt.Printf("call %d: allowed\n", i)
	}
	clock.Advance(100 * time.Millisecond) // one token comes back
	fmt.Println("after 100ms:", l.Allow())
	st := l.Stats()
	fmt.Printf("allowed %d, refused %d, %.0f per second, burst %.0f\n", st.Allowed, st.Refused, st.Rate, st.Burst)
	// Output:
	// call 0: allowed
	// call 1: allowed
	// call 2: allowed
	// call 3: true, retry after 100ms
	// after 100ms: <nil>
	// allowed 4, refused 1, 10 per second, burst 3
}

// A store makes each instance's limiter its share of a limit kept across
// the cluster: every interval it reads the instance's demand and sets its
// share.
func ExampleQuotaOf() {
	l, err := core.NewRateLimiter(core.RateLimitConfig{Name: "GET /feed", Rate: 1000, Burst: 1000})
	if err != nil {
		fmt.Println(err)
		return
	}
	for range 10 {
		_ = l.Allow()
	}
	q := core.QuotaOf(l)
	allowed, refused := q.Demand()
	fmt.Println("demand:", allowed, refused)
	q.SetShare(0.25) // this instance had a quarter of the cluster's demand
	st := l.Stats()
	fmt.Printf("%.0f per second, burst %.0f\n", st.Rate, st.Burst)
	// Output:
	// demand: 10 0
	// 250 per second, burst 250
}
