package core_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bulwark-go/bulwark/core"
)

// A flaky call succeeds on its third attempt.
func ExampleRetry() {
	retry, err := core.NewRetry(core.RetryConfig{
		MaxAttempts:    3,
		InitialBackoff: time.Millisecond,
		MaxBackoff:     10 * time.Millisecond,
	})
	if err != nil {
		panic(err)
	}
	calls := 0
	err = retry.Do(context.Background(), func(ctx context.Context) error {
		calls++
		if calls < 3 {
			return errors.New("temporarily unavailable")
		}
		return nil
	})
	fmt.Println(err, calls, retry.Stats().SuccessesAfterRetry)
	// Output: <nil> 3 1
}

// With a breaker attached, each attempt goes through the breaker and the
// retries stop as soon as it opens.
func ExampleRetryConfig_breaker() {
	breaker, _ := core.NewBreaker(core.BreakerConfig{Name: "payments", FailureThreshold: 2})
	retry, _ := core.NewRetry(core.RetryConfig{MaxAttempts: 5, InitialBackoff: time.Millisecond, Breaker: breaker})

	calls := 0
	err := retry.Do(context.Background(), func(ctx context.Context) error {
		calls++
		return errors.New("payments down")
	})
	fmt.Println(calls, breaker.State(), errors.Is(err, core.ErrOpen))
	// Output: 2 Open true
}

type retryAfterError struct{ after time.Duration }

func (e retryAfterError) Error() string { return fmt.Sprintf("busy, retry after %v", e.after) }

// A Delay hook honours a wait the server asked for, capped at MaxBackoff.
func ExampleRetryConfig_delay() {
	retry, err := core.NewRetry(core.RetryConfig{
		InitialBackoff: time.Millisecond,
		MaxBackoff:     5 * time.Millisecond,
		Delay: func(attempt int, err error) (time.Duration, bool) {
			var ra retryAfterError
			if errors.As(err, &ra) {
				return ra.after, true
			}
			return 0, false // use the backoff
		},
	})
	if err != nil {
		panic(err)
	}
	calls := 0
	err = retry.Do(context.Background(), func(ctx context.Context) error {
		if calls++; calls == 1 {
			return retryAfterError{after: time.Hour} // waits 5ms, not an hour
		}
		return nil
	})
	fmt.Println(err, calls)
	// Output: <nil> 2
}

// A retry budget keeps retries to a share of the traffic, so that an outage
// does not multiply the load.
func ExampleNewRetryBudget() {
	budget, _ := core.NewRetryBudget(core.RetryBudgetConfig{Ratio: 0.1, NoMinRetries: true})
	retry, _ := core.NewRetry(core.RetryConfig{
		MaxAttempts: 2,
		Budget:      budget,
		Delay:       func(int, error) (time.Duration, bool) { return 0, true }, // retry at once
	})
	for range 100 {
		_ = retry.Do(context.Background(), func(ctx context.Context) error { return errors.New("down") })
	}
	st := retry.Stats()
	fmt.Println(st.Calls, st.Retries, st.BudgetDenied)
	// Output: 100 10 90
}
