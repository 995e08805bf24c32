package store

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestFailureCauseInWords(t *testing.T) {
	dial := func(err error) error { return &net.OpError{Op: "dial", Net: "tcp", Err: err} }
	for _, tc := range []struct {
		err      error
		cause    string
		specific bool
	}{
		{dial(os.NewSyscallError("connect", syscall.ECONNREFUSED)), "connection refused", true},
		{fmt.Errorf("sync: %w", dial(&net.DNSError{Err: "no such host", Name: "redis.internal", IsNotFound: true})), "DNS: no such host redis.internal", true},
		{dial(&net.DNSError{Err: "server misbehaving", Name: "redis.internal"}), "DNS lookup of redis.internal failed", true},
		{&net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, "connection reset", true},
		{dial(os.NewSyscallError("connect", syscall.EHOSTUNREACH)), "host unreachable", true},
		{io.EOF, "the server closed the connection", true},
		{x509.UnknownAuthorityError{}, "TLS handshake failed", true},
		{redis.ErrClosed, "the Redis client is closed", true},
		{context.DeadlineExceeded, "timeout", false},
		{&net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, "timeout", false},
	} {
		cause, specific := failureCause(tc.err)
		if cause != tc.cause || specific != tc.specific {
			t.Errorf("%v: %q %v, want %q %v", tc.err, cause, specific, tc.cause, tc.specific)
		}
	}
}

// When all a failed call says is that its time ran out, explain opens a
// connection the way the client does and reports what that meets.
func TestExplainLooksBehindATimeout(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusing := closed.Addr().String()
	closed.Close()
	silent, err := net.Listen("tcp", "127.0.0.1:0") // accepts connections (the kernel does), never answers
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	dnsFails := func(context.Context, string, string) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "redis.internal", IsNotFound: true}}
	}
	for _, tc := range []struct {
		name   string
		client redis.UniversalClient
		cause  string
		detail string
	}{
		{"nothing listens", redis.NewClient(&redis.Options{Addr: refusing}), "connection refused", "connect: connection refused"},
		{"a hung server", redis.NewClient(&redis.Options{Addr: silent.Addr().String()}), "timeout", "accepts connections but Redis did not reply within 200ms"},
		{"a cluster", redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{refusing}}), "connection refused", refusing},
		{"a custom dialer", redis.NewClient(&redis.Options{Addr: "192.0.2.10:6379", Dialer: dnsFails}), "DNS: no such host redis.internal", "no such host"},
		{"a client of unknown type", wrappedClient{redis.NewClient(&redis.Options{Addr: refusing})}, "timeout", "no reply within 200ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer tc.client.Close()
			s := &RedisStore{client: tc.client, cfg: RedisConfig{OpTimeout: 200 * time.Millisecond}, ctx: context.Background()}
			cause, detail := s.explain(context.DeadlineExceeded)
			if cause != tc.cause || !strings.Contains(detail, tc.detail) {
				t.Errorf("explained as %q (%s), want %q (%s)", cause, detail, tc.cause, tc.detail)
			}
		})
	}
}

type wrappedClient struct{ redis.UniversalClient }
