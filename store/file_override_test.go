package store

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/internal/wait"
)

// readFileOverrides returns the overrides in the state file now.
func readFileOverrides(t *testing.T, path string) []Override {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, ovs, err := decodeFile(data)
	if err != nil {
		t.Fatal(err)
	}
	return ovs
}

// Overrides are kept in the file: saved by the next write, without Close,
// and by Close; a new store lists them, sorted; nil settings remove one.
func TestFileStoreKeepsOverrides(t *testing.T) {
	path := filepath.Join(t.TempDir(), "breakers.state")
	clk := core.NewFakeClock(fileT0)
	p := startFileStore(t, path, clk, FileConfig{})
	if got := p.fs.Overrides(); len(got) != 0 {
		t.Fatalf("a fresh store has overrides: %+v", got)
	}
	doc := []byte(`{"breaker":{"failure_threshold":2}}`)
	shared := Override{Endpoint: "GET /b", Settings: doc, Version: 4, Instance: "web-1", At: fileT0}
	p.fs.SetOverride(shared)
	doc[0] = '[' // the store keeps its own copy
	p.fs.SetOverride(Override{Endpoint: "GET /a", Settings: []byte(`{"timeout":"1s"}`)})
	p.fs.SetOverride(Override{Endpoint: "GET /gone", Settings: []byte(`{}`)})
	p.fs.SetOverride(Override{Endpoint: "GET /gone"}) // undone
	wait.For(t, testWait, "the overrides in the file", func() bool {
		data, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		_, ovs, err := decodeFile(data)
		return err == nil && len(ovs) == 2
	})
	want := []Override{
		{Endpoint: "GET /a", Settings: []byte(`{"timeout":"1s"}`)},
		{Endpoint: "GET /b", Settings: []byte(`{"breaker":{"failure_threshold":2}}`), Version: 4, Instance: "web-1", At: fileT0},
	}
	if got := readFileOverrides(t, path); !reflect.DeepEqual(got, want) {
		t.Fatalf("file holds\n%+v\nwant\n%+v", got, want)
	}
	if got := p.fs.Overrides(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Overrides() = %+v", got)
	}
	got := p.fs.Overrides()
	got[0].Settings[0] = 'X' // a copy: the store's is untouched
	if again := p.fs.Overrides(); !bytes.Equal(again[0].Settings, want[0].Settings) {
		t.Fatalf("Overrides returned the store's own document: %s", again[0].Settings)
	}

	// A change just before Close is saved by Close.
	p.fs.SetOverride(Override{Endpoint: "GET /a", Settings: []byte(`{"timeout":"3s"}`), Version: 9, Instance: "web-2", At: fileT0.Add(time.Second)})
	p.stop(t)
	p.fs.SetOverride(Override{Endpoint: "GET /late", Settings: []byte(`{}`)}) // after Close: dropped

	q := startFileStore(t, path, clk, FileConfig{})
	want[0] = Override{Endpoint: "GET /a", Settings: []byte(`{"timeout":"3s"}`), Version: 9, Instance: "web-2", At: fileT0.Add(time.Second)}
	if got := q.fs.Overrides(); !reflect.DeepEqual(got, want) {
		t.Fatalf("after a restart: %+v\nwant %+v", got, want)
	}
}

func TestFileStoreDropsOverridesItCannotStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "breakers.state")
	logs := &logRecorder{}
	fs, err := NewFileStore(FileConfig{Path: path, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []Override{
		{Endpoint: "", Settings: []byte(`{}`)},
		{Endpoint: "a\nb", Settings: []byte(`{}`)},
		{Endpoint: "api", Settings: []byte(`{not json`)},
		{Endpoint: "api", Settings: []byte{}},
		{Endpoint: "api", Settings: []byte(`"` + strings.Repeat("x", maxSettingsLen) + `"`)},
		{Endpoint: "api", Settings: []byte(`{}`), Instance: "no spaces"},
		{Endpoint: "api", Settings: []byte(`{}`), Version: maxVersion + 1},
	} {
		fs.SetOverride(o)
	}
	// A time past what the file holds is clamped, not refused.
	fs.SetOverride(Override{Endpoint: "far", Settings: []byte(`1`), At: time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err := fs.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := readFileOverrides(t, path)
	if len(got) != 1 || got[0].Endpoint != "far" || got[0].At.Unix() != fileMaxUnix {
		t.Fatalf("file holds %+v", got)
	}
	if n := logs.count(slog.LevelWarn, "settings override not kept"); n != 7 {
		t.Errorf("%d warnings for 7 bad overrides:\n%s", n, logs.dump())
	}
}

// A version 2 file loads with no overrides and is written back as
// version 3 with the overrides set since; a corrupt file's overrides are
// moved aside with it.
func TestFileStoreOverridesAcrossVersionsAndCorruption(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "breakers.state")
	rec := sampleFileRecords()[0]
	if err := os.WriteFile(path, fileV2(rec), 0o600); err != nil {
		t.Fatal(err)
	}
	clk := core.NewFakeClock(fileT0)
	p := startFileStore(t, path, clk, FileConfig{})
	if err := p.fs.LoadErr(); err != nil || len(p.fs.Overrides()) != 0 {
		t.Fatalf("version 2 file: %v, %+v", err, p.fs.Overrides())
	}
	p.fs.SetOverride(Override{Endpoint: "api", Settings: []byte(`{"x":1}`), Version: 1, Instance: "a"})
	p.stop(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if v := data[9]; v != fileVersion {
		t.Fatalf("written back as version %d", v)
	}
	if recs := readFileRecords(t, path); recs[rec.Endpoint].TotalRequests != rec.TotalRequests {
		t.Fatalf("the version 2 record was not kept: %+v", recs)
	}
	if ovs := readFileOverrides(t, path); len(ovs) != 1 || ovs[0].Endpoint != "api" {
		t.Fatalf("overrides %+v", ovs)
	}

	// Damage the override's document: the whole file is corrupt.
	i := bytes.Index(data, []byte(`{"x":1}`))
	data[i+1] = 0
	if err := os.WriteFile(path, fixFileCRC(data), 0o600); err != nil {
		t.Fatal(err)
	}
	q := startFileStore(t, path, clk, FileConfig{})
	le, ok := q.fs.LoadErr().(*LoadError)
	if !ok || le.MovedTo == "" {
		t.Fatalf("LoadErr %v", q.fs.LoadErr())
	}
	if got := q.fs.Overrides(); len(got) != 0 {
		t.Fatalf("overrides of a corrupt file: %+v", got)
	}
	if _, err := os.Stat(le.MovedTo); err != nil {
		t.Fatalf("the corrupt file was not kept: %v", err)
	}
}
