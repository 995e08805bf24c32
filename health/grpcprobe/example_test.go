package grpcprobe_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"google.golang.org/grpc"
	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/bulwark-go/bulwark/health/grpcprobe"
)

func ExampleNew() {
	// A gRPC server with the standard health service.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := grpchealth.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()

	probe, err := grpcprobe.New(grpcprobe.Config{Target: ln.Addr().String(), Timeout: 2 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(probe.Check(context.Background()).OK)
	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	fmt.Println(probe.Check(context.Background()).Err)
	// Output:
	// true
	// health status NOT_SERVING
}
