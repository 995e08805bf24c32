// Package bench compares Bulwark with its peers (sony/gobreaker,
// failsafe-go, eapache/go-resiliency and afex/hystrix-go) on the same
// workloads in one run:
//
//	cd bench && go test -run '^$' -bench . -benchmem
//
// It is a module of its own so that the peers never enter Bulwark's go.mod.
package bench
