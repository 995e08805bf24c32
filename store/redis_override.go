package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwark-go/bulwark/core"
)

// Settings overrides are shared as their documents, which the store never
// reads. Each endpoint's latest change is a hash in its own slot (its hash
// tag), {prefix:endpoint}:settings, kept without a TTL so that a change
// outlives restarts and idle periods; undoing a change leaves the hash
// with an empty document, so that versions keep growing. The set
// prefix:settings (a slot of its own) names every endpoint that has such a
// hash, for Overrides to list in Redis Cluster too; every command touches
// one key. A change is published on the channel prefix:settings, and every
// sync round compares the versions of the endpoints this instance follows,
// so that a lost message costs at most one SyncInterval.

// putScript stores an override's document under the next version and
// publishes it.
//
// KEYS: 1 settings hash.
// ARGV: 1 document ("" removes it), 2 instance, 3 floor version (the new
// version exceeds it), 4 channel, 5 endpoint, 6 the change counter to
// increment (a single Redis only: in Redis Cluster the key is in another
// slot), or "".
//
// Returns {version, at (Unix ms, Redis's clock)}.
var putScript = redis.NewScript(`
local k = KEYS[1]
local ty = redis.call('TYPE', k).ok
local ver = 0
if ty == 'hash' then
  local v = tonumber(redis.call('HGET', k, 'version'))
  if v and v >= 0 and v == math.floor(v) then ver = v else redis.call('DEL', k) end
elseif ty ~= 'none' then
  redis.call('DEL', k)
end
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
local nv = math.max(ver, tonumber(ARGV[3])) + 1
redis.call('HSET', k, 'version', string.format('%d', nv), 'settings', ARGV[1],
  'instance', ARGV[2], 'at', string.format('%d', now))
redis.call('PUBLISH', ARGV[4], cjson.encode({endpoint=ARGV[5], version=nv,
  instance=ARGV[2], at=now, settings=ARGV[1]}))
if ARGV[6] ~= '' then redis.call('INCR', ARGV[6]) end
return {nv, now}
`)

// settingsIndex is the set of endpoints with a settings hash.
func (s *RedisStore) settingsIndex() string { return s.cfg.KeyPrefix + ":settings" }

// changesKey is the counter of changes that a single Redis keeps: every
// winning compare-and-set and every settings put increments it, so that a
// sync round reads the endpoints' state and settings versions only when
// it moved (see syncScript). "" for Redis Cluster and Ring, where a script
// cannot reach a key of another slot, and every round reads them.
func (s *RedisStore) changesKey() string {
	switch s.client.(type) {
	case *redis.ClusterClient, *redis.Ring:
		return ""
	}
	return s.cfg.KeyPrefix + ":changes"
}

// PutOverride stores o for the cluster: o.Settings (a JSON document of at
// most 64 KiB, or nil to undo the endpoint's change) becomes the
// endpoint's latest change, under the next version (the previous one plus
// one, by a compare-and-set in Redis), made by this instance at Redis's
// time. It returns the Override as stored; o's own Version, Instance and
// At are ignored. Every other instance's RedisConfig.OnOverride gets it
// within milliseconds, and within one SyncInterval if the message is lost
// (this instance's does not). When Redis cannot be reached nothing is
// stored and the error matches ErrRedisUnavailable; after a timeout, Redis
// may have stored it all the same, and it then reaches OnOverride here too,
// like another instance's change.
func (s *RedisStore) PutOverride(ctx context.Context, o Override) (Override, error) {
	o = Override{Endpoint: o.Endpoint, Settings: o.Settings}
	if err := checkOverride(&o); err != nil {
		return Override{}, fmt.Errorf("bulwark: redis store: put override: %w", err)
	}
	o = cloneOverride(o)
	var out Override
	err := s.onWorker(ctx, func() error {
		var err error
		out, err = s.put(ctx, o)
		return err
	})
	return out, err
}

// put runs a PutOverride on the worker.
func (s *RedisStore) put(parent context.Context, o Override) (Override, error) {
	if !s.healthy.Load() {
		return Override{}, fmt.Errorf("bulwark: redis store: put override of %q: %w", o.Endpoint, ErrRedisUnavailable)
	}
	ctx, cancel := context.WithTimeout(parent, s.cfg.OpTimeout)
	defer cancel()
	// The index first: an endpoint it names may lack a hash, never the
	// reverse.
	err := s.client.SAdd(ctx, s.settingsIndex(), o.Endpoint).Err()
	var v any
	if err == nil {
		v, err = putScript.Run(ctx, s.client, []string{newRedisKeys(s.cfg.KeyPrefix, o.Endpoint).settings},
			string(o.Settings), s.cfg.InstanceID, s.knownSettings(o.Endpoint), s.settingsChannel, o.Endpoint, s.changesKey()).Result()
	}
	if err != nil {
		if callerErr := parent.Err(); callerErr != nil {
			return Override{}, fmt.Errorf("bulwark: redis store: put override of %q: %w", o.Endpoint, callerErr)
		}
		if isConnErr(err) {
			s.degrade(err)
			return Override{}, fmt.Errorf("bulwark: redis store: put override of %q: %w: %v", o.Endpoint, ErrRedisUnavailable, err)
		}
		return Override{}, fmt.Errorf("bulwark: redis store: put override of %q: %w", o.Endpoint, err)
	}
	ver, at, err := parsePutReply(v, s.redisNow())
	if err != nil {
		return Override{}, fmt.Errorf("bulwark: redis store: put override of %q: %w", o.Endpoint, err)
	}
	o.Version, o.Instance, o.At = ver, s.cfg.InstanceID, at
	s.learnSettings(o.Endpoint, ver)
	return cloneOverride(o), nil
}

// Overrides returns every endpoint's live override in the cluster now
// (those undone are left out), sorted by endpoint. It reads Redis from
// the caller's goroutine, within ctx and OpTimeout per round trip; when
// Redis cannot be reached the error matches ErrRedisUnavailable.
// Malformed entries are reported and left out. A change that another
// instance makes while it runs may reach OnOverride before Overrides
// returns the one it replaced: Version tells which is the newer.
func (s *RedisStore) Overrides(ctx context.Context) ([]Override, error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	fail := func(err error) ([]Override, error) {
		if isConnErr(err) {
			return nil, fmt.Errorf("bulwark: redis store: overrides: %w: %v", ErrRedisUnavailable, err)
		}
		return nil, fmt.Errorf("bulwark: redis store: overrides: %w", err)
	}
	var names []string
	var cursor uint64
	for {
		cctx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
		page, next, err := s.client.SScan(cctx, s.settingsIndex(), cursor, "", 1000).Result()
		cancel()
		if err != nil {
			return fail(err)
		}
		names = append(names, page...)
		if cursor = next; cursor == 0 || len(names) > maxIndexed {
			break
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	var out []Override
	const batch = 512
	for len(names) > 0 {
		part := names[:min(batch, len(names))]
		names = names[len(part):]
		cctx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
		pipe := s.client.Pipeline()
		cmds := make([]*redis.SliceCmd, len(part))
		for i, name := range part {
			if core.ValidateEndpoint(name) != nil {
				continue
			}
			cmds[i] = pipe.HMGet(cctx, newRedisKeys(s.cfg.KeyPrefix, name).settings, settingsFields...)
		}
		_, err := pipe.Exec(cctx)
		cancel()
		if err != nil && isConnErr(err) {
			return fail(err)
		}
		for i, name := range part {
			if cmds[i] == nil {
				s.report(nil, "settings index "+s.settingsIndex(), malformed("endpoint %.60q is not a valid endpoint name", name))
				continue
			}
			vals, err := cmds[i].Result()
			if err != nil {
				s.report(nil, "settings of "+strconv.Quote(name), err)
				continue
			}
			o, ok, err := parseSettingsHash(name, vals, s.redisNow())
			if err != nil {
				s.report(nil, "settings of "+strconv.Quote(name), err)
				continue
			}
			if !ok {
				continue
			}
			s.learnSettings(name, o.Version)
			if o.Settings != nil {
				out = append(out, o)
			}
		}
	}
	return out, nil
}

// maxIndexed bounds the endpoints Overrides reads from the index.
const maxIndexed = 1_000_000

// settingsFields are the fields of a settings hash, in the order
// parseSettingsHash reads them.
var settingsFields = []string{"version", "settings", "instance", "at"}

// knownSettings returns the highest settings version of endpoint this
// store has seen, stored or delivered.
func (s *RedisStore) knownSettings(endpoint string) uint64 {
	s.setMu.Lock()
	defer s.setMu.Unlock()
	return s.setKnown[endpoint]
}

// learnSettings records that endpoint's settings are at version v or
// later, so that nothing older is delivered after it. It reports whether
// v is news. The map is bounded: past its size, endpoints this store does
// not follow are not tracked (nor delivered).
func (s *RedisStore) learnSettings(endpoint string, v uint64) bool {
	s.setMu.Lock()
	defer s.setMu.Unlock()
	known, ok := s.setKnown[endpoint]
	if ok && v <= known {
		return false
	}
	if !ok && len(s.setKnown) >= 2*s.cfg.MaxEndpoints && s.lookup(endpoint) == nil {
		return false
	}
	s.setKnown[endpoint] = v
	return true
}

// deliverOverride hands a change made elsewhere to OnOverride, unless a
// change as new or newer was seen already. It runs on the worker.
func (s *RedisStore) deliverOverride(o Override) {
	if !s.learnSettings(o.Endpoint, o.Version) || s.cfg.OnOverride == nil {
		return
	}
	s.cfg.OnOverride(o)
}

// onSettingsMessage delivers a change published by another instance.
func (s *RedisStore) onSettingsMessage(payload []byte) {
	o, err := decodeSettingsMessage(payload, s.redisNow())
	if err != nil {
		s.report(nil, "settings message on "+s.settingsChannel+" ignored", err)
		return
	}
	s.deliverOverride(o)
}

// onWorker runs f on the worker goroutine, as the controls do, and
// returns its error, or ctx's, or ErrClosed.
func (s *RedisStore) onWorker(ctx context.Context, f func() error) error {
	r := &workerCall{f: f, reply: make(chan error, 1)}
	select {
	case s.calls <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closing:
		return ErrClosed
	}
	select { // the worker replies before it looks at s.closing again
	case err := <-r.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// workerCall is a function to run on the worker.
type workerCall struct {
	f     func() error
	reply chan error
}

// wireSettings is the JSON the put script publishes.
type wireSettings struct {
	Endpoint string `json:"endpoint"`
	Version  int64  `json:"version"`
	Instance string `json:"instance"`
	At       int64  `json:"at"`       // Unix ms, Redis's clock
	Settings string `json:"settings"` // the document; "" once removed
}

// decodeSettingsMessage parses and validates a settings message. Unknown
// fields, trailing data, wrong types and out-of-range values are errors
// matching errMalformed; it never panics.
func decodeSettingsMessage(payload []byte, now time.Time) (Override, error) {
	var m wireSettings
	if err := decodeStrict(payload, maxSettingsMessageLen, &m); err != nil {
		return Override{}, malformed("settings message: %v", err)
	}
	if err := core.ValidateEndpoint(m.Endpoint); err != nil {
		return Override{}, malformed("settings message: %v", err)
	}
	o, err := checkShared(m.Endpoint, m.Version, m.Settings, m.Instance, m.At, now)
	if err != nil {
		return Override{}, fmt.Errorf("settings message for %q: %w", m.Endpoint, err)
	}
	return o, nil
}

// parseSettingsHash validates the fields (settingsFields) of endpoint's
// settings hash, as HMGET returns them. A hash that is not there is
// (Override{}, false, nil).
func parseSettingsHash(endpoint string, vals []any, now time.Time) (Override, bool, error) {
	if len(vals) != len(settingsFields) {
		return Override{}, false, malformed("settings hash of %d fields", len(vals))
	}
	var f [4]string
	present := 0
	for i, v := range vals {
		switch v := v.(type) {
		case nil:
		case string:
			f[i] = v
			present++
		default:
			return Override{}, false, malformed("settings hash holds a %T", v)
		}
	}
	if present == 0 {
		return Override{}, false, nil
	}
	if present != len(vals) {
		return Override{}, false, malformed("settings hash lacks fields: %d of %d", present, len(vals))
	}
	nums := [2]int64{}
	for i, s := range [...]string{f[0], f[3]} {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return Override{}, false, malformed("settings hash: %.40q is not an integer", s)
		}
		nums[i] = n
	}
	o, err := checkShared(endpoint, nums[0], f[1], f[2], nums[1], now)
	if err != nil {
		return Override{}, false, err
	}
	return o, true, nil
}

// checkShared validates the fields of a shared override and builds it.
func checkShared(endpoint string, version int64, doc, instance string, at int64, now time.Time) (Override, error) {
	switch {
	case version < 1 || version > maxVersion:
		return Override{}, malformed("settings version %d out of range 1 to 2^53", version)
	case !validID(instance):
		return Override{}, malformed("settings instance %.40q is not a valid instance ID", instance)
	case at <= 0 || at > now.Add(maxOpenAhead).UnixMilli():
		return Override{}, malformed("settings time %d out of range", at)
	}
	o := Override{Endpoint: endpoint, Version: uint64(version), Instance: instance, At: time.UnixMilli(at)}
	if doc != "" {
		o.Settings = []byte(doc)
		if err := checkSettings(o.Settings); err != nil {
			return Override{}, malformed("%v", err)
		}
	}
	return o, nil
}

// parsePutReply parses the put script's {version, at}.
func parsePutReply(v any, now time.Time) (uint64, time.Time, error) {
	r, ok := v.([]any)
	if !ok || len(r) != 2 {
		return 0, time.Time{}, malformed("put reply %.100v", v)
	}
	ver, err := replyInt(r[0], "settings version", 1, maxVersion)
	if err != nil {
		return 0, time.Time{}, err
	}
	at, err := replyInt(r[1], "settings time", 1, now.Add(maxOpenAhead).UnixMilli())
	if err != nil {
		return 0, time.Time{}, err
	}
	return uint64(ver), time.UnixMilli(at), nil
}

// parseSettingsVersion parses a settings hash's version as HGET returns
// it: absent is 0.
func parseSettingsVersion(v string, err error) (uint64, error) {
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, perr := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
	if perr != nil || n > maxVersion || v != strconv.FormatUint(n, 10) {
		return 0, malformed("settings version %.40q", v)
	}
	return n, nil
}
