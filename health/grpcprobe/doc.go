// Package grpcprobe checks gRPC servers through the standard health
// service, grpc.health.v1.Health. It is the only Bulwark package that
// imports google.golang.org/grpc, so a program that checks no gRPC server
// does not link it.
//
// A probe made by New is a health.Probe like any other; hand it to a
// health.Monitor to let the server's health drive its breaker:
//
//	probe, err := grpcprobe.New(grpcprobe.Config{Target: "api.internal:9090"})
//	if err != nil {
//		return err // a *core.ConfigError for every bad field
//	}
//	err = mon.Watch("api-service", probe, health.WatchConfig{Interval: 30 * time.Second})
//
// A check passes only when the server answers SERVING for Config.Service
// ("" asks about the server as a whole).
package grpcprobe
