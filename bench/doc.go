// Package bench compares Bulwark with its peers (sony/gobreaker,
// failsafe-go, eapache/go-resiliency and afex/hystrix-go) on the same
// workloads in one run:
//
//	cd bench && go test -run '^$' -bench . -benchmem
//
// TestLoadSheddingSimulation compares adaptive concurrency limits (and
// no limit, and bulkheads sized too high and too low) on a simulated
// service offered half, twice, four times and again half its capacity,
// and prints goodput, p99 latency and the time to full admission after
// the load drops. It runs on testing/synctest's clock, or with
// -sim.realtime on the machine's, and only when asked:
//
//	cd bench && go test -run TestLoadSheddingSimulation -sim -v
//
// It is a module of its own so that the peers never enter Bulwark's go.mod.
package bench
