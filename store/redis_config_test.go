package store

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/core"
)

func TestRedisConfigValidation(t *testing.T) {
	if err := (RedisConfig{}).Validate(); err != nil {
		t.Fatalf("zero config: %v", err)
	}
	bad := RedisConfig{
		KeyPrefix: "a{b}", InstanceID: "has space", SyncInterval: time.Millisecond,
		TTL: time.Millisecond, OpTimeout: 2 * time.Minute, MaxReconnectBackoff: time.Hour, MaxEndpoints: -1,
	}
	err := bad.Validate()
	if !errors.Is(err, core.ErrInvalidConfig) {
		t.Fatalf("not a config error: %v", err)
	}
	for _, f := range []string{"KeyPrefix", "InstanceID", "SyncInterval", "TTL", "OpTimeout", "MaxReconnectBackoff", "MaxEndpoints"} {
		if !strings.Contains(err.Error(), "RedisConfig."+f) {
			t.Errorf("no error for %s in %v", f, err)
		}
	}
	if _, err := NewRedisStore(nil, RedisConfig{}); err == nil {
		t.Error("nil client accepted")
	}
	if _, err := NewRedisStore(nil, bad); err == nil {
		t.Error("bad config accepted")
	}
	if err := (RedisConfig{SyncInterval: time.Minute, MaxReconnectBackoff: time.Second}).Validate(); err == nil {
		t.Error("backoff below the sync interval accepted")
	}
}
