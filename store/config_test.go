package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwark-go/bulwark/core"
)

// TestConfigErrors gives each constructor bad configurations: each must
// fail with a *core.ConfigError for every bad field, named by its full
// path, and for nothing else.
func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "breakers.state")
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled: every config here is refused
	defer client.Close()
	var nilClock *core.FakeClock
	newFile := func(c FileConfig) func() error {
		return func() error { _, err := NewFileStore(c); return err }
	}
	newRedis := func(c RedisConfig) func() error {
		return func() error { _, err := NewRedisStore(c); return err }
	}
	for _, tc := range []struct {
		name   string
		build  func() error
		fields []string
	}{
		{"file: zero config", newFile(FileConfig{}), []string{"store.FileConfig.Path"}},
		{"file: every field bad", newFile(FileConfig{Interval: time.Millisecond, Perm: os.ModeDir | 0o600, Clock: nilClock}),
			[]string{"store.FileConfig.Path", "store.FileConfig.Interval", "store.FileConfig.Perm", "store.FileConfig.Clock"}},
		{"file: negative interval", newFile(FileConfig{Path: path, Interval: -time.Second}), []string{"store.FileConfig.Interval"}},
		{"file: interval too long", newFile(FileConfig{Path: path, Interval: 48 * time.Hour}), []string{"store.FileConfig.Interval"}},
		{"redis: zero config", newRedis(RedisConfig{}), []string{"store.RedisConfig.Client"}},
		{"redis: typed nil client", newRedis(RedisConfig{Client: (*redis.Client)(nil)}), []string{"store.RedisConfig.Client"}},
		{"redis: every field bad", newRedis(RedisConfig{
			KeyPrefix: "a{b}", InstanceID: "has space", SyncInterval: time.Millisecond, TTL: time.Millisecond,
			OpTimeout: 2 * time.Minute, MaxReconnectBackoff: time.Hour, MaxEndpoints: -1, Clock: nilClock,
		}), []string{
			"store.RedisConfig.Client", "store.RedisConfig.KeyPrefix", "store.RedisConfig.InstanceID",
			"store.RedisConfig.SyncInterval", "store.RedisConfig.TTL", "store.RedisConfig.OpTimeout",
			"store.RedisConfig.MaxReconnectBackoff", "store.RedisConfig.MaxEndpoints", "store.RedisConfig.Clock",
		}},
		{"redis: backoff below the sync interval", newRedis(RedisConfig{Client: client, SyncInterval: time.Minute, MaxReconnectBackoff: time.Second}),
			[]string{"store.RedisConfig.MaxReconnectBackoff"}},
		{"redis: too many endpoints", newRedis(RedisConfig{Client: client, MaxEndpoints: 2_000_000}), []string{"store.RedisConfig.MaxEndpoints"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.build()
			var ce *core.ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, core.ErrInvalidConfig) {
				t.Fatalf("error %v is not a *core.ConfigError", err)
			}
			var got []string
			for _, e := range unjoin(err) {
				if !errors.As(e, &ce) {
					t.Errorf("%v is not a *core.ConfigError", e)
					continue
				}
				got = append(got, ce.Field)
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tc.fields))
			if !slices.Equal(got, want) {
				t.Errorf("fields %q, want %q\n%v", got, want, err)
			}
		})
	}
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestConfigDefaultsAreValid(t *testing.T) {
	fs, err := NewFileStore(FileConfig{Path: filepath.Join(t.TempDir(), "s"), Logger: fileQuiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := fs.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := RedisConfig{Client: redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})}
	defer c.Client.Close()
	if err := c.check(); err != nil {
		t.Fatal(err)
	}
	want := RedisConfig{
		Client: c.Client, KeyPrefix: "bulwark", SyncInterval: time.Second, TTL: time.Hour, OpTimeout: 500 * time.Millisecond,
		MaxReconnectBackoff: 30 * time.Second, MaxEndpoints: 10_000, Logger: c.Logger, Clock: core.SystemClock(),
	}
	if !reflect.DeepEqual(c, want) { // OnOverride nil in both
		t.Errorf("defaults %+v\nwant %+v", c, want)
	}
	long := RedisConfig{Client: c.Client, SyncInterval: time.Minute}
	if err := long.check(); err != nil || long.MaxReconnectBackoff != time.Minute {
		t.Errorf("a sync interval above 30s: backoff %v, %v", long.MaxReconnectBackoff, err)
	}
}

func TestAttachNilIsAnError(t *testing.T) {
	fs, err := NewFileStore(FileConfig{Path: filepath.Join(t.TempDir(), "s"), Logger: fileQuiet})
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close(context.Background())
	if err := fs.Attach(nil); err == nil {
		t.Error("FileStore.Attach(nil) accepted")
	}
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialerRetries: 1})
	defer c.Close()
	rs, err := NewRedisStore(RedisConfig{Client: c, Logger: fileQuiet})
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close(context.Background())
	if err := rs.Attach(nil); err == nil {
		t.Error("RedisStore.Attach(nil) accepted")
	}
}
