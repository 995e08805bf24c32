package core

import "testing"

// BenchmarkFaultCheckNone is the request path's fault check on an endpoint
// with no experiment: one atomic load.
func BenchmarkFaultCheckNone(b *testing.B) {
	m, err := NewManager(ManagerConfig{Faults: &FaultLimits{}})
	if err != nil {
		b.Fatal(err)
	}
	e, err := m.Endpoint("GET /x")
	if err != nil {
		b.Fatal(err)
	}
	header := func(string) string { return "" }
	b.ReportAllocs()
	for b.Loop() {
		if f, _ := e.Inject(header, nil); f != nil {
			b.Fatal("injected with no experiment")
		}
	}
}
