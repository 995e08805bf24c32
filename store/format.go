package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/bulwark-go/bulwark/events"
	"hash/crc32"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bulwark-go/bulwark/core"
)

// ErrCorrupt is matched by every error about a state file whose content is
// not a valid state file: bad magic, unknown version, bad checksum, a
// truncated file or a record that fails validation.
var ErrCorrupt = errors.New("corrupt state file")

// The file format, described byte by byte in docs/state-file.md; its
// tests pin that layout. Version 2 adds a component hold's owner and end
// to every record, version 3 the section of settings overrides after the
// records; files of versions 1 and 2 still load.
const (
	fileMagic   = "BWKSTATE"
	fileVersion = 3

	fileHeaderLen  = 16 // magic, version, reserved, record count
	fileTrailerLen = 4  // CRC-32C

	// fileMaxReason bounds a stored reason in bytes; longer ones are cut.
	fileMaxReason = 1024
	// fileMaxOwner bounds a stored hold owner in bytes; longer ones are cut.
	fileMaxOwner = 256
	// fileRecordFixedV1 is a version 1 record's length without its name
	// and reason; a version 2 record adds the owner's length and the
	// hold's end (fileHoldFixed) and the owner.
	fileRecordFixedV1 = 1 + 1 + 2 + 2 + 12 + 12 + 7*8
	fileHoldFixed     = 2 + 12
	fileRecordFixed   = fileRecordFixedV1 + fileHoldFixed
	// fileMaxEndpoint is the longest name core.ValidateEndpoint accepts.
	fileMaxEndpoint = 256

	// fileMaxRecords matches the most endpoints a Manager can track, and
	// bounds the overrides too.
	fileMaxRecords = 1_000_000
	// fileOverrideFixed is an override entry's length without its
	// endpoint, instance and document: the three lengths, the version and
	// the time.
	fileOverrideFixed = 2 + 8 + 2 + 12 + 4
	// fileMaxSize bounds what a load reads into memory.
	fileMaxSize = 256 << 20

	// Wall-clock times are stored as Unix seconds and nanoseconds, limited
	// to the years 1 to 9999 that time.Time formats.
	fileMinUnix = -62135596800 // 0001-01-01T00:00:00Z
	fileMaxUnix = 253402300799 // 9999-12-31T23:59:59Z
)

// fileLayout is what differs between the versions a build reads.
type fileLayout struct {
	fixed     int  // a record's length without its variable-length fields
	holds     bool // records end with a hold's owner and end
	overrides bool // the overrides section follows the records
}

var fileLayouts = map[uint16]fileLayout{
	1: {fixed: fileRecordFixedV1},
	2: {fixed: fileRecordFixed, holds: true},
	3: {fixed: fileRecordFixed, holds: true, overrides: true},
}

func (l fileLayout) minRecord() int { return l.fixed + 1 }

func (l fileLayout) maxRecord() int {
	n := l.fixed + fileMaxEndpoint + fileMaxReason
	if l.holds {
		n += fileMaxOwner
	}
	return n
}

var fileCRCTable = crc32.MakeTable(crc32.Castagnoli)

// corruptf returns an error matching ErrCorrupt.
func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

// sanitizeRecord makes a live snapshot storable: under concurrent traffic a
// snapshot's counts are read one at a time and may be briefly inconsistent,
// and only an Open breaker has an open-until time.
func sanitizeRecord(s core.Snapshot) core.Snapshot {
	s.TotalRequests = max(s.TotalRequests, 0)
	s.FailedRequests = min(max(s.FailedRequests, 0), s.TotalRequests)
	s.SuccessfulRequests = s.TotalRequests - s.FailedRequests
	s.SlowRequests = min(max(s.SlowRequests, 0), s.TotalRequests)
	s.RejectedRequests = max(s.RejectedRequests, 0)
	s.ConsecutiveFailures = max(s.ConsecutiveFailures, 0)
	s.ConsecutiveSuccesses = max(s.ConsecutiveSuccesses, 0)
	if len(s.Reason) > fileMaxReason {
		s.Reason = cutUTF8(s.Reason, fileMaxReason)
	}
	s.Reason = strings.ToValidUTF8(s.Reason, "\uFFFD")
	if len(s.Reason) > fileMaxReason {
		s.Reason = cutUTF8(s.Reason, fileMaxReason)
	}
	s.LastStateChange = clampFileTime(s.LastStateChange)
	switch {
	case s.State != events.ForcedOpen || s.HeldBy == "":
		// Only a component's hold has an owner and an end.
		s.HeldBy, s.HoldUntil = "", time.Time{}
	default:
		s.HeldBy = strings.ToValidUTF8(s.HeldBy, "\uFFFD")
		if len(s.HeldBy) > fileMaxOwner {
			s.HeldBy = cutUTF8(s.HeldBy, fileMaxOwner)
		}
		if s.HoldUntil = clampFileTime(s.HoldUntil); s.HoldUntil.IsZero() {
			// Unknown end: restored, the hold has lapsed.
			s.HoldUntil = time.Unix(fileMinUnix, 1)
		}
	}
	if s.State != events.Open {
		s.OpenUntil = time.Time{}
	} else if s.OpenUntil = clampFileTime(s.OpenUntil); s.OpenUntil.IsZero() {
		// Unknown remaining time: restored, it half-opens at once.
		s.OpenUntil = time.Unix(fileMinUnix, 1)
	}
	return s
}

func cutUTF8(s string, n int) string {
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func clampFileTime(t time.Time) time.Time {
	switch {
	case t.IsZero():
		return t
	case t.Unix() < fileMinUnix:
		return time.Unix(fileMinUnix, 0)
	case t.Unix() > fileMaxUnix:
		return time.Unix(fileMaxUnix, 0)
	}
	return t
}

// validateRecord checks one record as the decoder does, so that whatever the
// encoder writes the decoder reads back.
func validateRecord(s *core.Snapshot) error {
	if err := core.ValidateEndpoint(s.Endpoint); err != nil {
		return err
	}
	if !s.State.Valid() {
		return fmt.Errorf("%q: invalid state %d", s.Endpoint, uint8(s.State))
	}
	if len(s.Reason) > fileMaxReason || !utf8.ValidString(s.Reason) {
		return fmt.Errorf("%q: reason is not valid UTF-8 of at most %d bytes", s.Endpoint, fileMaxReason)
	}
	if s.ConsecutiveFailures < 0 || s.ConsecutiveSuccesses < 0 || s.TotalRequests < 0 ||
		s.SuccessfulRequests < 0 || s.FailedRequests < 0 || s.RejectedRequests < 0 || s.SlowRequests < 0 {
		return fmt.Errorf("%q: negative count", s.Endpoint)
	}
	if s.SuccessfulRequests > math.MaxInt64-s.FailedRequests || s.SuccessfulRequests+s.FailedRequests != s.TotalRequests {
		return fmt.Errorf("%q: successful %d + failed %d != total %d", s.Endpoint, s.SuccessfulRequests, s.FailedRequests, s.TotalRequests)
	}
	if s.SlowRequests > s.TotalRequests {
		return fmt.Errorf("%q: slow %d > total %d", s.Endpoint, s.SlowRequests, s.TotalRequests)
	}
	if (s.State == events.Open) == s.OpenUntil.IsZero() {
		return fmt.Errorf("%q: state %s with open-until %v: only an Open breaker has one", s.Endpoint, s.State, s.OpenUntil)
	}
	if s.HeldBy != "" && s.State != events.ForcedOpen {
		return fmt.Errorf("%q: state %s held by %q: only a ForcedOpen breaker is held", s.Endpoint, s.State, s.HeldBy)
	}
	if len(s.HeldBy) > fileMaxOwner || !utf8.ValidString(s.HeldBy) {
		return fmt.Errorf("%q: hold owner is not valid UTF-8 of at most %d bytes", s.Endpoint, fileMaxOwner)
	}
	if (s.HeldBy == "") != s.HoldUntil.IsZero() {
		return fmt.Errorf("%q: held by %q until %v: a component's hold has both an owner and an end, an operator's neither", s.Endpoint, s.HeldBy, s.HoldUntil)
	}
	for _, t := range [...]time.Time{s.LastStateChange, s.OpenUntil, s.HoldUntil} {
		if !t.IsZero() && (t.Unix() < fileMinUnix || t.Unix() > fileMaxUnix) {
			return fmt.Errorf("%q: time %v out of range", s.Endpoint, t)
		}
	}
	return nil
}

// encodeFile returns the state file holding recs and ovs, which it sorts
// by endpoint. Every record and override must be valid, and the endpoints
// of each distinct; an override must have a document (a removal is not
// stored).
func encodeFile(recs []core.Snapshot, ovs ...Override) ([]byte, error) {
	recs = slices.Clone(recs)
	slices.SortFunc(recs, func(a, b core.Snapshot) int { return strings.Compare(a.Endpoint, b.Endpoint) })
	ovs = slices.Clone(ovs)
	slices.SortFunc(ovs, func(a, b Override) int { return strings.Compare(a.Endpoint, b.Endpoint) })
	if len(recs) > fileMaxRecords || len(ovs) > fileMaxRecords {
		return nil, fmt.Errorf("%d records and %d overrides, more than the %d a file holds of each", len(recs), len(ovs), fileMaxRecords)
	}
	size := fileHeaderLen + 4 + fileTrailerLen
	for i := range recs {
		if err := validateRecord(&recs[i]); err != nil {
			return nil, err
		}
		if i > 0 && recs[i].Endpoint == recs[i-1].Endpoint {
			return nil, fmt.Errorf("endpoint %q appears twice", recs[i].Endpoint)
		}
		size += 4 + fileRecordFixed + len(recs[i].Endpoint) + len(recs[i].Reason) + len(recs[i].HeldBy)
	}
	for i := range ovs {
		if err := validateFileOverride(&ovs[i]); err != nil {
			return nil, err
		}
		if i > 0 && ovs[i].Endpoint == ovs[i-1].Endpoint {
			return nil, fmt.Errorf("override of %q appears twice", ovs[i].Endpoint)
		}
		size += 4 + fileOverrideLen(&ovs[i])
	}
	if size > fileMaxSize {
		return nil, fmt.Errorf("%d bytes, more than the %d a file may hold", size, fileMaxSize)
	}
	b := make([]byte, 0, size)
	b = append(b, fileMagic...)
	b = binary.BigEndian.AppendUint16(b, fileVersion)
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(len(recs)))
	for i := range recs {
		b = appendFileRecord(b, &recs[i])
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(ovs)))
	for i := range ovs {
		b = appendFileOverride(b, &ovs[i])
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, fileCRCTable)), nil
}

// validateFileOverride checks one override as the decoder does: a stored
// override always has a document, and a time in the file's range.
func validateFileOverride(o *Override) error {
	if o.Settings == nil {
		return fmt.Errorf("%q: an override without settings is a removal, not stored", o.Endpoint)
	}
	if err := checkOverride(o); err != nil {
		return err
	}
	if !o.At.IsZero() && (o.At.Unix() < fileMinUnix || o.At.Unix() > fileMaxUnix) {
		return fmt.Errorf("%q: override time %v out of range", o.Endpoint, o.At)
	}
	return nil
}

func fileOverrideLen(o *Override) int {
	return fileOverrideFixed + len(o.Endpoint) + len(o.Instance) + len(o.Settings)
}

// appendFileOverride appends an override entry of version 3.
func appendFileOverride(b []byte, o *Override) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(fileOverrideLen(o)))
	b = binary.BigEndian.AppendUint16(b, uint16(len(o.Endpoint)))
	b = append(b, o.Endpoint...)
	b = binary.BigEndian.AppendUint64(b, o.Version)
	b = binary.BigEndian.AppendUint16(b, uint16(len(o.Instance)))
	b = append(b, o.Instance...)
	b = appendFileTime(b, o.At)
	b = binary.BigEndian.AppendUint32(b, uint32(len(o.Settings)))
	return append(b, o.Settings...)
}

// appendFileRecord appends a version 2 record.
func appendFileRecord(b []byte, s *core.Snapshot) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(fileRecordFixed+len(s.Endpoint)+len(s.Reason)+len(s.HeldBy)))
	b = append(b, byte(s.State), 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(s.Endpoint)))
	b = append(b, s.Endpoint...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(s.Reason)))
	b = append(b, s.Reason...)
	b = appendFileTime(b, s.LastStateChange)
	b = appendFileTime(b, s.OpenUntil)
	for _, n := range [...]int64{
		s.ConsecutiveFailures, s.ConsecutiveSuccesses, s.TotalRequests,
		s.SuccessfulRequests, s.FailedRequests, s.RejectedRequests, s.SlowRequests,
	} {
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(s.HeldBy)))
	b = append(b, s.HeldBy...)
	return appendFileTime(b, s.HoldUntil)
}

// appendFileTime stores t as Unix seconds and nanoseconds. The zero time is
// stored as itself (fileMinUnix, 0), so that every time in range has exactly one
// encoding.
func appendFileTime(b []byte, t time.Time) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(t.Unix()))
	return binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
}

// decodeFile parses and validates a whole state file: its records and,
// from version 3, its overrides. Any defect is an error matching
// ErrCorrupt; it never panics, and it allocates in proportion to
// len(data) only.
func decodeFile(data []byte) ([]core.Snapshot, []Override, error) {
	if len(data) > fileMaxSize {
		return nil, nil, corruptf("%d bytes, more than the %d a state file may hold", len(data), fileMaxSize)
	}
	if len(data) < fileHeaderLen+fileTrailerLen {
		if !bytes.HasPrefix([]byte(fileMagic), data[:min(len(data), len(fileMagic))]) {
			return nil, nil, corruptf("bad magic (not a Bulwark state file)")
		}
		return nil, nil, corruptf("truncated: %d bytes, a state file has at least %d", len(data), fileHeaderLen+fileTrailerLen)
	}
	if string(data[:len(fileMagic)]) != fileMagic {
		return nil, nil, corruptf("bad magic %q (not a Bulwark state file)", data[:len(fileMagic)])
	}
	v := binary.BigEndian.Uint16(data[8:])
	layout, ok := fileLayouts[v]
	if !ok {
		return nil, nil, corruptf("format version %d, this build reads versions 1 to %d", v, fileVersion)
	}
	body, sum := data[:len(data)-fileTrailerLen], binary.BigEndian.Uint32(data[len(data)-fileTrailerLen:])
	if got := crc32.Checksum(body, fileCRCTable); got != sum {
		return nil, nil, corruptf("checksum mismatch: stored %08x, computed %08x (truncated or damaged)", sum, got)
	}
	if r := binary.BigEndian.Uint16(data[10:]); r != 0 {
		return nil, nil, corruptf("reserved header field is %d, want 0", r)
	}
	n := binary.BigEndian.Uint32(data[12:])
	if room := uint32((len(body) - fileHeaderLen) / (4 + layout.minRecord())); n > room || n > fileMaxRecords {
		return nil, nil, corruptf("record count %d does not fit in %d bytes", n, len(data))
	}
	recs := make([]core.Snapshot, 0, n)
	rest := body[fileHeaderLen:]
	for i := range int(n) {
		if len(rest) < 4 {
			return nil, nil, corruptf("record %d: truncated length", i)
		}
		l := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if l < uint32(layout.minRecord()) || l > uint32(layout.maxRecord()) || uint64(l) > uint64(len(rest)) {
			return nil, nil, corruptf("record %d: length %d out of bounds (%d to %d, %d bytes left)", i, l, layout.minRecord(), layout.maxRecord(), len(rest))
		}
		s, err := decodeFileRecord(rest[:l], layout)
		if err != nil {
			return nil, nil, corruptf("record %d: %v", i, err)
		}
		if i > 0 && recs[i-1].Endpoint >= s.Endpoint {
			return nil, nil, corruptf("record %d: endpoint %q out of order or repeated", i, s.Endpoint)
		}
		recs = append(recs, s)
		rest = rest[l:]
	}
	var ovs []Override
	if layout.overrides {
		var err error
		if ovs, rest, err = decodeFileOverrides(rest); err != nil {
			return nil, nil, err
		}
	}
	if len(rest) != 0 {
		return nil, nil, corruptf("%d stray bytes after the last record", len(rest))
	}
	return recs, ovs, nil
}

// Bounds of an override entry's length.
const (
	fileMinOverride = fileOverrideFixed + 1 + 1
	fileMaxOverride = fileOverrideFixed + fileMaxEndpoint + maxIDLen + maxSettingsLen
)

// decodeFileOverrides parses the overrides section at the start of rest
// and returns what follows it.
func decodeFileOverrides(rest []byte) ([]Override, []byte, error) {
	if len(rest) < 4 {
		return nil, nil, corruptf("truncated: no override count")
	}
	n := binary.BigEndian.Uint32(rest)
	rest = rest[4:]
	if room := uint32(len(rest) / (4 + fileMinOverride)); n > room || n > fileMaxRecords {
		return nil, nil, corruptf("override count %d does not fit in %d bytes", n, len(rest))
	}
	var ovs []Override
	if n > 0 {
		ovs = make([]Override, 0, n)
	}
	for i := range int(n) {
		if len(rest) < 4 {
			return nil, nil, corruptf("override %d: truncated length", i)
		}
		l := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if l < fileMinOverride || l > fileMaxOverride || uint64(l) > uint64(len(rest)) {
			return nil, nil, corruptf("override %d: length %d out of bounds (%d to %d, %d bytes left)", i, l, fileMinOverride, fileMaxOverride, len(rest))
		}
		o, err := decodeFileOverride(rest[:l])
		if err != nil {
			return nil, nil, corruptf("override %d: %v", i, err)
		}
		if i > 0 && ovs[i-1].Endpoint >= o.Endpoint {
			return nil, nil, corruptf("override %d: endpoint %q out of order or repeated", i, o.Endpoint)
		}
		ovs = append(ovs, o)
		rest = rest[l:]
	}
	return ovs, rest, nil
}

// decodeFileOverride parses one override entry, which must fill r exactly.
func decodeFileOverride(r []byte) (Override, error) {
	d := fileDecoder{b: r}
	var o Override
	o.Endpoint = d.str(fileMaxEndpoint)
	o.Version = d.u64()
	o.Instance = d.str(maxIDLen)
	o.At = d.time()
	if n := d.u32(); d.err == nil {
		if n < 1 || n > maxSettingsLen {
			return o, fmt.Errorf("settings of %d bytes, 1 to %d allowed", n, maxSettingsLen)
		}
		o.Settings = bytes.Clone(d.take(int(n)))
	}
	if d.err != nil {
		return o, d.err
	}
	if len(d.b) != 0 {
		return o, fmt.Errorf("%d stray bytes at the end", len(d.b))
	}
	return o, validateFileOverride(&o)
}

// decodeFileRecord parses one record of the given layout, which must fill
// r exactly.
func decodeFileRecord(r []byte, layout fileLayout) (core.Snapshot, error) {
	d := fileDecoder{b: r}
	var s core.Snapshot
	s.State = events.State(d.u8())
	if flags := d.u8(); flags != 0 {
		return s, fmt.Errorf("flags byte is %d, want 0", flags)
	}
	s.Endpoint = d.str(fileMaxEndpoint)
	s.Reason = d.str(fileMaxReason)
	s.LastStateChange = d.time()
	s.OpenUntil = d.time()
	for _, p := range [...]*int64{
		&s.ConsecutiveFailures, &s.ConsecutiveSuccesses, &s.TotalRequests,
		&s.SuccessfulRequests, &s.FailedRequests, &s.RejectedRequests, &s.SlowRequests,
	} {
		*p = int64(d.u64())
	}
	if layout.holds {
		s.HeldBy = d.str(fileMaxOwner)
		s.HoldUntil = d.time()
	}
	if d.err != nil {
		return s, d.err
	}
	if len(d.b) != 0 {
		return s, fmt.Errorf("%d stray bytes at the end", len(d.b))
	}
	return s, validateRecord(&s)
}

// fileDecoder reads big-endian fields from b; after the first error every read
// returns zero and err keeps that error.
type fileDecoder struct {
	b   []byte
	err error
}

func (d *fileDecoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.b) {
		d.err = fmt.Errorf("truncated: need %d bytes, have %d", n, len(d.b))
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *fileDecoder) u8() uint8 {
	if p := d.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (d *fileDecoder) u16() uint16 {
	if p := d.take(2); p != nil {
		return binary.BigEndian.Uint16(p)
	}
	return 0
}

func (d *fileDecoder) u32() uint32 {
	if p := d.take(4); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

func (d *fileDecoder) u64() uint64 {
	if p := d.take(8); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

func (d *fileDecoder) str(limit int) string {
	n := int(d.u16())
	if d.err == nil && n > limit {
		d.err = fmt.Errorf("string of %d bytes, at most %d allowed", n, limit)
	}
	return string(d.take(n))
}

func (d *fileDecoder) time() time.Time {
	sec, nsec := int64(d.u64()), d.u32()
	switch {
	case d.err != nil:
		return time.Time{}
	case nsec >= 1e9 || sec < fileMinUnix || sec > fileMaxUnix:
		d.err = fmt.Errorf("time of %d s and %d ns out of range", sec, nsec)
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}
