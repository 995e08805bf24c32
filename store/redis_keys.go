package store

import (
	"strings"
	"time"
	"unicode/utf8"
)

// Bounds on what the store writes and accepts from Redis.
const (
	maxReasonLen   = 1024                // bytes of a transition's reason
	maxOwnerLen    = 256                 // bytes of a component hold's owner
	maxHoldAhead   = 32 * 24 * time.Hour // longest believable remaining lease of a hold
	maxIDLen       = 128                 // bytes of an instance ID or key prefix
	maxMessageLen  = 8 << 10             // bytes of a pub/sub message
	maxOpenAhead   = 8 * 24 * time.Hour  // longest believable open time (core caps it at 7 days)
	maxVersion     = 1 << 53             // versions are Lua numbers in the scripts
	maxWindowField = 10_000              // instances' entries read per window
	// maxSettingsMessageLen bounds a settings message: the document,
	// escaped as a JSON string (at most doubling it), and the rest.
	maxSettingsMessageLen = 2*maxSettingsLen + 1<<10
)

// redisKeys are one endpoint's keys. All share the hash tag
// {prefix:endpoint}, so in Redis Cluster they live in one slot and one
// script can touch them together.
type redisKeys struct {
	tag      string // {prefix:endpoint}: named by the batched scripts, which build the keys from it
	state    string // hash: version, state, old_state, open_until (Unix ms), held_by, hold_until (Unix ms), reason, origin, updated (Unix ms), window_epoch
	window   string // hash: instance ID -> "total failed slow pushed_ms version"
	probes   string // hash: version, "i:" instance ID -> "slots active_ms lease_ms"
	settings string // hash: version, settings (the document; "" once removed), instance, at (Unix ms); no TTL
}

func newRedisKeys(prefix, endpoint string) redisKeys {
	tag := "{" + prefix + ":" + escapeEndpoint(endpoint) + "}"
	return redisKeys{tag: tag, state: tag + ":state", window: tag + ":window", probes: tag + ":probes", settings: tag + ":settings"}
}

// escapeEndpoint percent-encodes every byte outside [A-Za-z0-9._~/-], '%'
// included, so that distinct endpoints give distinct keys and no endpoint
// can close the hash tag ('}') or fake another key's separators (':').
func escapeEndpoint(name string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(name))
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '.' || c == '_' || c == '~' || c == '/' || c == '-' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// validID reports whether s can be a key prefix or an instance ID: 1 to
// maxIDLen bytes of [A-Za-z0-9._:-]. Braces are excluded because they would
// change the keys' hash tag, spaces because IDs appear in window entries.
func validID(s string) bool {
	if s == "" || len(s) > maxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// keySlot is the Redis Cluster slot of key: CRC16 (XMODEM) of its hash
// tag, or of the whole key without one, modulo 16384.
func keySlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for k := 0; k < len(key); k++ {
		crc ^= uint16(key[k]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) & 16383
}
