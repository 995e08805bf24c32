package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/bulwark-go/bulwark/core"
)

// Override is a runtime change of one endpoint's settings, kept as the
// document that describes it. The stores keep and share the document
// without reading it: what it means is up to whoever made it.
type Override struct {
	// Endpoint is the endpoint whose settings change.
	Endpoint string
	// Settings is the document (JSON, at most 64 KiB); nil when the
	// endpoint's change was undone.
	Settings []byte
	// Version orders the changes of one endpoint across the cluster: a
	// change with a higher version is the newer. 0 when not shared.
	Version uint64
	// Instance is the instance that made it, when shared.
	Instance string
	// At is when it was made: by Redis's clock, when shared.
	At time.Time
}

// maxSettingsLen bounds an override's document in bytes.
const maxSettingsLen = 64 << 10

// checkOverride reports what makes o unstorable: an invalid endpoint, a
// document that is not JSON of 1 byte to 64 KiB (nil is a removal), an
// instance that is not a valid instance ID, a version past 2^53.
func checkOverride(o *Override) error {
	if err := core.ValidateEndpoint(o.Endpoint); err != nil {
		return err
	}
	if err := checkSettings(o.Settings); err != nil {
		return fmt.Errorf("%q: %w", o.Endpoint, err)
	}
	if o.Instance != "" && !validID(o.Instance) {
		return fmt.Errorf("%q: instance %.40q is not 1 to %d of A-Z a-z 0-9 . _ : -", o.Endpoint, o.Instance, maxIDLen)
	}
	if o.Version > maxVersion {
		return fmt.Errorf("%q: version %d past 2^53", o.Endpoint, o.Version)
	}
	return nil
}

// checkSettings accepts nil (a removal) and JSON documents of 1 byte to
// maxSettingsLen in valid UTF-8.
func checkSettings(doc []byte) error {
	switch {
	case doc == nil:
		return nil
	case len(doc) == 0 || len(doc) > maxSettingsLen:
		return fmt.Errorf("settings of %d bytes: 1 to %d allowed (nil removes them)", len(doc), maxSettingsLen)
	case !utf8.Valid(doc) || !json.Valid(doc):
		return fmt.Errorf("settings are not a JSON document in UTF-8")
	}
	return nil
}

// cloneOverride returns o with its own copy of the document, so that the
// caller may reuse its buffer.
func cloneOverride(o Override) Override {
	if o.Settings != nil {
		o.Settings = bytes.Clone(o.Settings)
	}
	return o
}
