package store

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"github.com/bulwark-go/bulwark/events"
	"hash/crc32"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/core"
)

var fileT0 = time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC)

// sampleFileRecords returns one record in each state, with every count set.
func sampleFileRecords() []core.Snapshot {
	base := core.Snapshot{
		Reason: "failure threshold exceeded: 5 consecutive failures", LastStateChange: fileT0,
		ConsecutiveFailures: 3, ConsecutiveSuccesses: 1, TotalRequests: 1000,
		SuccessfulRequests: 900, FailedRequests: 100, RejectedRequests: 42, SlowRequests: 7,
	}
	var out []core.Snapshot
	for st, name := range []string{"GET /a", "GET /b/{id}", "POST /c", "api.example.com", "ünïcode ✓"} {
		s := base
		s.Endpoint, s.State = name, events.State(st)
		if s.State == events.Open {
			s.OpenUntil = fileT0.Add(40 * time.Second)
		}
		out = append(out, s)
	}
	out[2].Reason = ""
	out[2].LastStateChange = time.Time{}
	// A component's hold, with its owner and the end of its lease.
	held := base
	held.Endpoint, held.State, held.Reason = "health/held", events.ForcedOpen, "held by health ping: down"
	held.HeldBy, held.HoldUntil = "health ping", fileT0.Add(95*time.Second)
	return append(out[:4], held, out[4])
}

// sampleOverrides returns settings overrides: one shared, one made on
// this instance alone (version 0, no instance, no time).
func sampleOverrides() []Override {
	return []Override{
		{Endpoint: "GET /a", Settings: []byte(`{"breaker":{"failure_threshold":3}}`), Version: 7, Instance: "web-2", At: fileT0},
		{Endpoint: "local only", Settings: []byte(`{"timeout":"2s"}`)},
	}
}

func mustEncodeFile(t testing.TB, recs []core.Snapshot, ovs ...Override) []byte {
	t.Helper()
	b, err := encodeFile(recs, ovs...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixFileCRC rewrites a file's checksum to match its content, so that a test can
// reach the checks behind it.
func fixFileCRC(b []byte) []byte {
	b = bytes.Clone(b)
	if len(b) >= fileTrailerLen {
		n := len(b) - fileTrailerLen
		binary.BigEndian.PutUint32(b[n:], crc32.Checksum(b[:n], fileCRCTable))
	}
	return b
}

func TestFormatRoundTripEveryState(t *testing.T) {
	recs := sampleFileRecords()
	got, _, err := decodeFile(mustEncodeFile(t, recs))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, recs) { // recs is already sorted by endpoint
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, recs)
	}
	seen := map[events.State]bool{}
	for _, r := range got {
		seen[r.State] = true
	}
	if len(seen) != 5 {
		t.Fatalf("states covered: %v", seen)
	}
	if got[4].HeldBy != "health ping" || !got[4].HoldUntil.Equal(fileT0.Add(95*time.Second)) {
		t.Fatalf("the hold did not round-trip: %+v", got[4])
	}
}

func TestFormatEmptyAndSorted(t *testing.T) {
	b := mustEncodeFile(t, nil)
	if len(b) != fileHeaderLen+4+fileTrailerLen || string(b[:8]) != "BWKSTATE" {
		t.Fatalf("empty file % x", b)
	}
	if got, ovs, err := decodeFile(b); err != nil || len(got) != 0 || len(ovs) != 0 {
		t.Fatalf("empty: %v %v %v", got, ovs, err)
	}
	recs := sampleFileRecords()
	rev := []core.Snapshot{recs[4], recs[2], recs[5], recs[0], recs[3], recs[1]}
	ovs := sampleOverrides()
	if !bytes.Equal(mustEncodeFile(t, rev, ovs[1], ovs[0]), mustEncodeFile(t, recs, ovs...)) {
		t.Fatal("encoding depends on record order")
	}
}

func TestFormatOverridesRoundTrip(t *testing.T) {
	recs, ovs := sampleFileRecords(), sampleOverrides()
	gotRecs, gotOvs, err := decodeFile(mustEncodeFile(t, recs, ovs...))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotRecs, recs) || !reflect.DeepEqual(gotOvs, ovs) {
		t.Fatalf("round trip:\n got %+v\n     %+v\nwant %+v\n     %+v", gotRecs, gotOvs, recs, ovs)
	}
	// Overrides without records, and the largest document allowed.
	big := Override{Endpoint: "big", Settings: []byte(`"` + strings.Repeat("x", maxSettingsLen-2) + `"`), Version: maxVersion,
		Instance: strings.Repeat("i", maxIDLen), At: time.Unix(fileMaxUnix, 999_999_999).UTC()}
	_, gotOvs, err = decodeFile(mustEncodeFile(t, nil, big))
	if err != nil || len(gotOvs) != 1 || !reflect.DeepEqual(gotOvs[0], big) {
		t.Fatalf("largest override: %v", err)
	}
}

func TestFormatLayout(t *testing.T) {
	s := core.Snapshot{Endpoint: "e", State: events.ForcedOpen, Reason: "r", LastStateChange: time.Unix(1, 2),
		HeldBy: "hh", HoldUntil: time.Unix(3, 4), ConsecutiveFailures: 5, ConsecutiveSuccesses: 6, TotalRequests: 9,
		SuccessfulRequests: 1, FailedRequests: 8, RejectedRequests: 10, SlowRequests: 9}
	o := Override{Endpoint: "o", Settings: []byte("{}"), Version: 258, Instance: "i", At: time.Unix(5, 6)}
	b := mustEncodeFile(t, []core.Snapshot{s}, o)
	want := []byte("BWKSTATE\x00\x03\x00\x00\x00\x00\x00\x01")
	want = append(want, 0, 0, 0, 104, 3, 0, 0, 1, 'e', 0, 1, 'r')
	want = append(want, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2) // last change
	unset := int64(fileMinUnix)
	want = binary.BigEndian.AppendUint64(want, uint64(unset)) // open until: unset
	want = append(want, 0, 0, 0, 0)
	for _, n := range []byte{5, 6, 9, 1, 8, 10, 9} {
		want = append(want, 0, 0, 0, 0, 0, 0, 0, n)
	}
	want = append(want, 0, 2, 'h', 'h', 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 4)       // held by, hold until
	want = append(want, 0, 0, 0, 1, 0, 0, 0, 32)                                  // one override of 32 bytes
	want = append(want, 0, 1, 'o', 0, 0, 0, 0, 0, 0, 1, 2, 0, 1, 'i')             // endpoint, version, instance
	want = append(want, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 6, 0, 0, 0, 2, '{', '}') // at, settings
	want = binary.BigEndian.AppendUint32(want, crc32.Checksum(want, crc32.MakeTable(crc32.Castagnoli)))
	if !bytes.Equal(b, want) {
		t.Fatalf("layout:\n got % x\nwant % x", b, want)
	}
}

// fileV2 is the version 2 encoding of recs, as the encoder of that version
// wrote it: version 3 without the overrides section.
func fileV2(recs ...core.Snapshot) []byte {
	b, err := encodeFile(recs)
	if err != nil {
		panic(err)
	}
	b = b[:len(b)-4-fileTrailerLen] // no override count, no checksum
	binary.BigEndian.PutUint16(b[8:], 2)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, fileCRCTable))
}

// Files written before overrides were stored still load, record for
// record, and are written back as version 3.
func TestFormatVersion2StillLoads(t *testing.T) {
	recs := sampleFileRecords()
	v2 := fileV2(recs...)
	got, ovs, err := decodeFile(v2)
	if err != nil || !reflect.DeepEqual(got, recs) || ovs != nil {
		t.Fatalf("version 2: %+v %+v %v", got, ovs, err)
	}
	if v3 := mustEncodeFile(t, got); binary.BigEndian.Uint16(v3[8:]) != 3 || !bytes.Equal(v3[10:len(v3)-8], v2[10:len(v2)-4]) {
		t.Fatalf("re-encoded: % x", v3)
	}
	// A version 2 file has no overrides section, a version 3 file must.
	withOvs := bytes.Clone(mustEncodeFile(t, recs, sampleOverrides()...))
	binary.BigEndian.PutUint16(withOvs[8:], 2)
	if _, _, err := decodeFile(fixFileCRC(withOvs)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("overrides under version 2: %v", err)
	}
	binary.BigEndian.PutUint16(v2[8:], 3)
	if _, _, err := decodeFile(fixFileCRC(v2)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("no overrides section under version 3: %v", err)
	}
}

// fileV1 is the version 1 encoding of recs, which must not be held, as the
// encoder of that version wrote it.
func fileV1(recs ...core.Snapshot) []byte {
	b := []byte("BWKSTATE\x00\x01\x00\x00")
	b = binary.BigEndian.AppendUint32(b, uint32(len(recs)))
	for i := range recs {
		r := appendFileRecord(nil, &recs[i])
		r = r[:len(r)-fileHoldFixed] // no hold fields
		binary.BigEndian.PutUint32(r, uint32(len(r)-4))
		b = append(b, r...)
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, fileCRCTable))
}

// Files written before holds were stored still load, record for record.
func TestFormatVersion1StillLoads(t *testing.T) {
	var recs []core.Snapshot
	for _, r := range sampleFileRecords() {
		if r.HeldBy == "" {
			recs = append(recs, r)
		}
	}
	v1 := fileV1(recs...)
	if binary.BigEndian.Uint32(v1[fileHeaderLen:]) != uint32(fileRecordFixedV1+len(recs[0].Endpoint)+len(recs[0].Reason)) {
		t.Fatal("the version 1 record is not its documented length")
	}
	got, _, err := decodeFile(v1)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, recs) {
		t.Fatalf("version 1:\n got %+v\nwant %+v", got, recs)
	}
	// Re-encoded, it is the current version with the same records.
	v2 := mustEncodeFile(t, got)
	if v := binary.BigEndian.Uint16(v2[8:]); v != fileVersion {
		t.Fatalf("re-encoded as version %d", v)
	}
	if again, _, err := decodeFile(v2); err != nil || !reflect.DeepEqual(again, recs) {
		t.Fatalf("version 1 re-encoded: %+v, %v", again, err)
	}
	// A version 1 file cannot carry later records, nor the reverse.
	mixed := bytes.Clone(mustEncodeFile(t, recs))
	binary.BigEndian.PutUint16(mixed[8:], 1)
	if _, _, err := decodeFile(fixFileCRC(mixed)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("version 2 records under version 1: %v", err)
	}
	for _, v := range []uint16{2, 3} {
		binary.BigEndian.PutUint16(v1[8:], v)
		if _, _, err := decodeFile(fixFileCRC(v1)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("version 1 records under version %d: %v", v, err)
		}
	}
}

func TestFormatEncodeRejectsInvalid(t *testing.T) {
	ok := sampleFileRecords()[0]
	bad := map[string]func(*core.Snapshot){
		"empty name":      func(s *core.Snapshot) { s.Endpoint = "" },
		"control char":    func(s *core.Snapshot) { s.Endpoint = "a\nb" },
		"state":           func(s *core.Snapshot) { s.State = 9 },
		"negative":        func(s *core.Snapshot) { s.RejectedRequests = -1 },
		"sum":             func(s *core.Snapshot) { s.SuccessfulRequests++ },
		"slow":            func(s *core.Snapshot) { s.SlowRequests = s.TotalRequests + 1 },
		"open no until":   func(s *core.Snapshot) { s.State = events.Open },
		"closed w until":  func(s *core.Snapshot) { s.OpenUntil = fileT0 },
		"long reason":     func(s *core.Snapshot) { s.Reason = strings.Repeat("x", fileMaxReason+1) },
		"bad utf8":        func(s *core.Snapshot) { s.Reason = "\xff" },
		"time range":      func(s *core.Snapshot) { s.LastStateChange = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
		"held not forced": func(s *core.Snapshot) { s.HeldBy, s.HoldUntil = "x", fileT0 },
		"owner no end":    func(s *core.Snapshot) { s.State, s.HeldBy = events.ForcedOpen, "x" },
		"end no owner":    func(s *core.Snapshot) { s.State, s.HoldUntil = events.ForcedOpen, fileT0 },
		"long owner": func(s *core.Snapshot) {
			s.State, s.HeldBy, s.HoldUntil = events.ForcedOpen, strings.Repeat("x", fileMaxOwner+1), fileT0
		},
		"bad utf8 owner": func(s *core.Snapshot) { s.State, s.HeldBy, s.HoldUntil = events.ForcedOpen, "\xff", fileT0 },
		"hold range": func(s *core.Snapshot) {
			s.State, s.HeldBy, s.HoldUntil = events.ForcedOpen, "x", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
		},
	}
	for name, f := range bad {
		s := ok
		f(&s)
		if _, err := encodeFile([]core.Snapshot{s}); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
	if _, err := encodeFile([]core.Snapshot{ok, ok}); err == nil {
		t.Error("duplicate endpoint encoded")
	}
}

func TestFormatSanitizeMakesLiveSnapshotsStorable(t *testing.T) {
	long := strings.Repeat("é", fileMaxReason) // 2 bytes each
	cases := []core.Snapshot{
		{Endpoint: "a", State: events.Closed, TotalRequests: 5, FailedRequests: 7, SlowRequests: 9, Reason: long},
		{Endpoint: "b", State: events.Open, TotalRequests: -1, RejectedRequests: -3, Reason: "bad \xff utf8"},
		{Endpoint: "c", State: events.HalfOpen, OpenUntil: fileT0, LastStateChange: time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Endpoint: "d", State: events.HalfOpen, HeldBy: "gone", HoldUntil: fileT0},
		{Endpoint: "e", State: events.ForcedOpen, HeldBy: strings.Repeat("ö", fileMaxOwner) + "\xff"},
		{Endpoint: "f", State: events.ForcedOpen, HoldUntil: fileT0},
	}
	for _, c := range cases {
		s := sanitizeRecord(c)
		if err := validateRecord(&s); err != nil {
			t.Errorf("%s: sanitized snapshot invalid: %v", c.Endpoint, err)
		}
	}
	if s := sanitizeRecord(cases[0]); len(s.Reason) != fileMaxReason || !strings.HasPrefix(long, s.Reason) {
		t.Errorf("reason cut to %d bytes", len(s.Reason))
	}
	if s := sanitizeRecord(cases[3]); s.HeldBy != "" || !s.HoldUntil.IsZero() {
		t.Errorf("a HalfOpen record kept a hold: %+v", s)
	}
	// An owner too long is cut; a hold without a known end has lapsed.
	if s := sanitizeRecord(cases[4]); len(s.HeldBy) != fileMaxOwner || !s.HoldUntil.Equal(time.Unix(fileMinUnix, 1)) {
		t.Errorf("owner of %d bytes until %v", len(s.HeldBy), s.HoldUntil)
	}
	if s := sanitizeRecord(cases[5]); s.HeldBy != "" || !s.HoldUntil.IsZero() {
		t.Errorf("an operator's hold got an end: %+v", s)
	}
}

func TestFormatDecodeRejectsCorrupt(t *testing.T) {
	good := mustEncodeFile(t, sampleFileRecords())
	rec0 := fileHeaderLen + 4 // first record's body
	set := func(off int, v ...byte) []byte {
		b := bytes.Clone(good)
		copy(b[off:], v)
		return fixFileCRC(b)
	}
	oneRecord := func(f func(*core.Snapshot)) []byte {
		s := sampleFileRecords()[0]
		f(&s)
		b := mustEncodeFile(t, []core.Snapshot{sampleFileRecords()[0]})
		// Re-encode the record by hand, bypassing the encoder's checks.
		body := appendFileRecord(nil, &s)
		b = append(b[:fileHeaderLen], body...)
		return fixFileCRC(append(b, 0, 0, 0, 0))
	}
	cases := map[string][]byte{
		"empty":            {},
		"short magic":      []byte("BWK"),
		"bad magic":        append([]byte("NOTSTATE"), good[8:]...),
		"garbage":          bytes.Repeat([]byte{0xA5}, 300),
		"text":             []byte("{\"state\":\"Open\"}\n"),
		"version":          set(8, 0, 4),
		"version zero":     set(8, 0, 0),
		"bad crc":          append(bytes.Clone(good[:len(good)-1]), good[len(good)-1]^1),
		"flipped bit":      func() []byte { b := bytes.Clone(good); b[rec0+10] ^= 4; return b }(),
		"truncated":        good[:len(good)-1],
		"truncated half":   good[:len(good)/2],
		"header only":      good[:fileHeaderLen],
		"reserved":         set(10, 0, 1),
		"count high":       set(12, 0, 0, 0, 7),
		"count low":        set(12, 0, 0, 0, 5),
		"count huge":       set(12, 0xff, 0xff, 0xff, 0xff),
		"record too long":  set(fileHeaderLen, 0xff, 0xff, 0xff, 0xff),
		"record too short": set(fileHeaderLen, 0, 0, 0, 3),
		"stray byte":       fixFileCRC(append(bytes.Clone(good[:len(good)-4]), 0, 0, 0, 0, 0)),
		"no override count": func() []byte {
			b := bytes.Clone(good[:len(good)-8])
			return fixFileCRC(append(b, 0, 0, 0, 0))
		}(),
		"state":           set(rec0, 7),
		"flags":           set(rec0+1, 1),
		"name too long":   set(rec0+2, 0xff, 0xff),
		"name empty":      oneRecord(func(s *core.Snapshot) { s.Endpoint = "" }),
		"nsec":            oneRecord(func(s *core.Snapshot) { s.LastStateChange = time.Unix(0, 0); s.Reason = "" }),
		"negative":        oneRecord(func(s *core.Snapshot) { s.RejectedRequests = -1 }),
		"sum":             oneRecord(func(s *core.Snapshot) { s.FailedRequests++ }),
		"slow":            oneRecord(func(s *core.Snapshot) { s.SlowRequests = s.TotalRequests + 1 }),
		"open no until":   oneRecord(func(s *core.Snapshot) { s.State = events.Open }),
		"closed w until":  oneRecord(func(s *core.Snapshot) { s.OpenUntil = fileT0 }),
		"invalid name":    oneRecord(func(s *core.Snapshot) { s.Endpoint = "a\x00b" }),
		"bad utf8 reason": oneRecord(func(s *core.Snapshot) { s.Reason = "\xc3" }),
		"time range":      oneRecord(func(s *core.Snapshot) { s.LastStateChange = time.Date(20000, 1, 1, 0, 0, 0, 0, time.UTC) }),
		"held not forced": oneRecord(func(s *core.Snapshot) { s.HeldBy, s.HoldUntil = "x", fileT0 }),
		"owner no end":    oneRecord(func(s *core.Snapshot) { s.State, s.HeldBy = events.ForcedOpen, "x" }),
		"end no owner":    oneRecord(func(s *core.Snapshot) { s.State, s.HoldUntil = events.ForcedOpen, fileT0 }),
		"bad utf8 owner":  oneRecord(func(s *core.Snapshot) { s.State, s.HeldBy, s.HoldUntil = events.ForcedOpen, "\xc3", fileT0 }),
		"owner too long": oneRecord(func(s *core.Snapshot) {
			s.State, s.HeldBy, s.HoldUntil = events.ForcedOpen, strings.Repeat("x", fileMaxOwner+1), fileT0
		}),
		"unsorted": func() []byte {
			r := sampleFileRecords()
			b := append([]byte(nil), good[:fileHeaderLen]...)
			b = appendFileRecord(appendFileRecord(b, &r[1]), &r[0])
			binary.BigEndian.PutUint32(b[12:], 2)
			return fixFileCRC(append(b, 0, 0, 0, 0))
		}(),
		"duplicate": func() []byte {
			r := sampleFileRecords()
			b := append([]byte(nil), good[:fileHeaderLen]...)
			b = appendFileRecord(appendFileRecord(b, &r[0]), &r[0])
			binary.BigEndian.PutUint32(b[12:], 2)
			return fixFileCRC(append(b, 0, 0, 0, 0))
		}(),
	}
	// Overrides that the encoder would refuse, or a section out of shape.
	oneOverride := func(f func(*Override)) []byte {
		o := sampleOverrides()[0]
		f(&o)
		b := mustEncodeFile(t, nil)
		b = append(b[:fileHeaderLen], 0, 0, 0, 1)
		return fixFileCRC(append(appendFileOverride(b, &o), 0, 0, 0, 0))
	}
	withOvs := mustEncodeFile(t, nil, sampleOverrides()...)
	ov0 := fileHeaderLen + 4 + 4 // the first override's body
	setOv := func(off int, v ...byte) []byte {
		b := bytes.Clone(withOvs)
		copy(b[off:], v)
		return fixFileCRC(b)
	}
	for name, b := range map[string][]byte{
		"override count high":   setOv(fileHeaderLen, 0, 0, 0, 3),
		"override count huge":   setOv(fileHeaderLen, 0xff, 0xff, 0xff, 0xff),
		"override too long":     setOv(fileHeaderLen+4, 0, 1, 0, 0),
		"override too short":    setOv(fileHeaderLen+4, 0, 0, 0, 5),
		"override name long":    setOv(ov0, 0xff, 0xff),
		"override no name":      oneOverride(func(o *Override) { o.Endpoint = "" }),
		"override bad name":     oneOverride(func(o *Override) { o.Endpoint = "a\nb" }),
		"override no settings":  oneOverride(func(o *Override) { o.Settings = nil }),
		"override not json":     oneOverride(func(o *Override) { o.Settings = []byte("{oops") }),
		"override bad utf8":     oneOverride(func(o *Override) { o.Settings = []byte("\"\xff\"") }),
		"override two docs":     oneOverride(func(o *Override) { o.Settings = []byte("{} {}") }),
		"override bad instance": oneOverride(func(o *Override) { o.Instance = "a b" }),
		"override version":      oneOverride(func(o *Override) { o.Version = maxVersion + 1 }),
		"override time":         oneOverride(func(o *Override) { o.At = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }),
		"override settings long": oneOverride(func(o *Override) {
			o.Settings = []byte(`"` + strings.Repeat("x", maxSettingsLen-1) + `"`)
		}),
		"overrides unsorted": func() []byte {
			ovs := sampleOverrides()
			b := append(bytes.Clone(withOvs[:fileHeaderLen]), 0, 0, 0, 2)
			b = appendFileOverride(appendFileOverride(b, &ovs[1]), &ovs[0])
			return fixFileCRC(append(b, 0, 0, 0, 0))
		}(),
		"overrides repeated": func() []byte {
			ovs := sampleOverrides()
			b := append(bytes.Clone(withOvs[:fileHeaderLen]), 0, 0, 0, 2)
			b = appendFileOverride(appendFileOverride(b, &ovs[0]), &ovs[0])
			return fixFileCRC(append(b, 0, 0, 0, 0))
		}(),
	} {
		cases[name] = b
	}
	if _, _, err := decodeFile(oneOverride(func(*Override) {})); err != nil {
		t.Fatalf("the override the corrupt cases start from does not decode: %v", err)
	}

	// Make the "nsec" case's first time field carry 10^9 nanoseconds.
	nsec := cases["nsec"]
	binary.BigEndian.PutUint32(nsec[fileHeaderLen+4+4+len("GET /a")+2+8:], 1e9)
	cases["nsec"] = fixFileCRC(nsec)

	for name, b := range cases {
		got, _, err := decodeFile(b)
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: got %v, %v; want ErrCorrupt", name, got, err)
		}
		t.Logf("%s: %v", name, err)
	}
	for n := range len(good) {
		if _, _, err := decodeFile(good[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("prefix of %d bytes: %v", n, err)
		}
	}
}

// FuzzDecode checks that the fileDecoder never panics, and that whatever it
// accepts encodes back to the same bytes. Each input is also tried with its
// checksum corrected, so that the fuzzer reaches the record parser.
func FuzzDecode(f *testing.F) {
	recs := sampleFileRecords()
	f.Add(mustEncodeFile(f, recs))
	f.Add(mustEncodeFile(f, nil))
	for _, r := range recs {
		f.Add(mustEncodeFile(f, []core.Snapshot{r}))
	}
	f.Add(fileV1(recs[0], recs[1]))
	f.Add(fileV2(recs[0], recs[1]))
	f.Add(mustEncodeFile(f, recs[:2], sampleOverrides()...))
	f.Add(mustEncodeFile(f, nil, sampleOverrides()[1]))
	f.Add([]byte("BWKSTATE"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, in := range [][]byte{data, fixFileCRC(data)} {
			got, ovs, err := decodeFile(in)
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("error %v does not match ErrCorrupt", err)
				}
				continue
			}
			out, err := encodeFile(got, ovs...)
			if err != nil {
				t.Fatalf("decoded records do not encode: %v", err)
			}
			// An older version re-encodes as that version wrote it.
			switch binary.BigEndian.Uint16(in[8:]) {
			case 1:
				out = fileV1(got...)
			case 2:
				out = fileV2(got...)
			}
			if !bytes.Equal(out, in) {
				t.Fatalf("round trip changed the bytes:\n in % x\nout % x", in, out)
			}
		}
	})
}

// The examples in docs/state-file.md are what the encoders write: the
// current version's first, then those of versions 2 and 1, which still
// load.
func TestFormatDocumentedExample(t *testing.T) {
	doc, err := os.ReadFile("../docs/state-file.md")
	if err != nil {
		t.Fatal(err)
	}
	var dumps [][]byte
	var dumped []byte
	for _, line := range strings.Split(string(doc), "\n") {
		if line == "```" && len(dumped) > 0 {
			dumps, dumped = append(dumps, dumped), nil
		}
		if len(line) < 10 || !strings.HasPrefix(line, "000000") || line[8] != ' ' {
			continue
		}
		hexPart, _, _ := strings.Cut(line[10:], "|")
		b, err := hex.DecodeString(strings.ReplaceAll(hexPart, " ", ""))
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		dumped = append(dumped, b...)
	}
	if len(dumps) != 3 {
		t.Fatalf("%d hex dumps in the document, want 3 (versions 3, 2 and 1)", len(dumps))
	}
	closed := core.Snapshot{Endpoint: "api", State: events.Closed, Reason: "reset",
		LastStateChange: time.Unix(1760000000, 0), TotalRequests: 4, SuccessfulRequests: 4}
	override := Override{Endpoint: "api", Settings: []byte(`{"breaker":{"timeout":"5s"}}`), Version: 3,
		Instance: "web-2", At: time.Unix(1760000000, 250000000).UTC()}
	if want := mustEncodeFile(t, []core.Snapshot{closed}, override); !bytes.Equal(dumps[0], want) {
		t.Fatalf("the documented example is\n% x\nthe encoder writes\n% x", dumps[0], want)
	}
	held := core.Snapshot{Endpoint: "db", State: events.ForcedOpen, Reason: "held by health ping: down",
		LastStateChange: time.Unix(1760000000, 0), HeldBy: "health ping", HoldUntil: time.Unix(1760000095, 0),
		TotalRequests: 10, SuccessfulRequests: 5, FailedRequests: 5, RejectedRequests: 2, SlowRequests: 1}
	if want := fileV2(held); !bytes.Equal(dumps[1], want) {
		t.Fatalf("the documented version 2 example is\n% x\nversion 2 writes\n% x", dumps[1], want)
	}
	open := core.Snapshot{Endpoint: "api", State: events.Open, Reason: "down",
		LastStateChange: time.Unix(1760000000, 0), OpenUntil: time.Unix(1760000030, 500000000),
		ConsecutiveFailures: 5, TotalRequests: 10, SuccessfulRequests: 5, FailedRequests: 5, RejectedRequests: 2, SlowRequests: 1}
	if want := fileV1(open); !bytes.Equal(dumps[2], want) {
		t.Fatalf("the documented version 1 example is\n% x\nversion 1 writes\n% x", dumps[2], want)
	}
	got, _, err := decodeFile(dumps[2])
	want, _, _ := decodeFile(mustEncodeFile(t, []core.Snapshot{open}))
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("the version 1 example decodes to %+v, %v; want %+v", got, err, want)
	}
}
