package bulwark

import (
	"crypto/tls"
	"iter"
	"maps"
	"net/url"
	"reflect"
)

func mapsKeys[M ~map[string]V, V any](m M) iter.Seq[string] { return maps.Keys(m) }

// isNil reports whether v holds a nil pointer (a part New never made).
func isNil(v any) bool {
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

// redactURL hides the password of a URL that errors may print.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// grpcTLS is the TLS configuration of a grpcs:// health check.
func grpcTLS(host string) *tls.Config {
	return &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
}
