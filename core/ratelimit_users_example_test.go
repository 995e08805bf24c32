package core_test

import (
	"fmt"
	"time"

	"github.com/bulwark-go/bulwark/core"
)

func ExamplePerUserRateLimiter() {
	clock := core.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	l, err := core.NewPerUserRateLimiter(core.PerUserRateLimitConfig{
		RateLimit: core.RateLimitConfig{Name: "GET /search", Rate: 1, Burst: 2},
		MaxUsers:  10_000,
		Clock:     clock,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, user := range []string{"alice", "alice", "alice", "bob"} {
		fmt.Println(user, l.Allow(user))
	}
	st := l.Stats()
	fmt.Printf("%d users, %d allowed, %d refused\n", st.Users, st.Allowed, st.Refused)
	// Output:
	// alice <nil>
	// alice <nil>
	// alice rate limit exceeded: GET /search
	// bob <nil>
	// 2 users, 3 allowed, 1 refused
}
