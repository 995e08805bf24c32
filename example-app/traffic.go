package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"
)

// traffic keeps the dashboard alive: a few steady users, and one noisy user
// who sends bursts of concurrent requests and meets the per-user limit.
type traffic struct {
	base   string
	client *http.Client
	wg     sync.WaitGroup
	cancel context.CancelFunc
}

func startTraffic(base string) *traffic {
	ctx, cancel := context.WithCancel(context.Background())
	t := &traffic{base: base, cancel: cancel, client: &http.Client{Timeout: 5 * time.Second}}
	for i := range 4 {
		t.wg.Add(1)
		go t.steady(ctx, i)
	}
	t.wg.Add(1)
	go t.noisy(ctx)
	return t
}

func (t *traffic) stop() {
	t.cancel()
	t.wg.Wait()
}

func (t *traffic) steady(ctx context.Context, worker int) {
	defer t.wg.Done()
	tick := time.NewTicker(time.Duration(80+worker*15) * time.Millisecond)
	defer tick.Stop()
	symbols := []string{"ACME", "GLOBEX", "INITECH", "UMBRELLA"}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		user := fmt.Sprintf("user-%d", 1+rand.IntN(40))
		switch n := rand.IntN(10); {
		case n < 4:
			t.send(ctx, "GET", "/api/quotes/"+symbols[rand.IntN(len(symbols))], user)
		case n < 7:
			t.send(ctx, "GET", fmt.Sprintf("/api/users/%d", rand.IntN(1000)), user)
		case n < 9:
			t.send(ctx, "POST", "/api/orders", user)
		default:
			t.send(ctx, "GET", "/api/reports/daily", user)
		}
	}
}

func (t *traffic) noisy(ctx context.Context) {
	defer t.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(3 * time.Second):
		}
		var burst sync.WaitGroup
		for range 12 {
			burst.Add(1)
			go func() {
				defer burst.Done()
				t.send(ctx, "GET", "/api/reports/daily", "noisy-neighbour")
			}()
		}
		burst.Wait()
	}
}

func (t *traffic) send(ctx context.Context, method, path, user string) {
	var body io.Reader
	if method == "POST" {
		body = strings.NewReader(`{"sku":"WIDGET-1","qty":1}`)
	}
	req, err := http.NewRequestWithContext(ctx, method, t.base+path, body)
	if err != nil {
		return
	}
	req.Header.Set("X-User", user)
	resp, err := t.client.Do(req)
	if err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
}
