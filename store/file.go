package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
	"github.com/bulwark-go/bulwark/internal/check"
)

// FileConfig configures a FileStore. Path is required; the zero value of
// every other field is its default: save on every transition and on Close,
// into a file only its owner can read.
type FileConfig struct {
	// Path is the state file. Required; its folder must exist.
	Path string
	// Interval, when positive, also saves every Interval, so that the
	// stored counts stay fresh between transitions. A save that would write
	// the same bytes as the last one is skipped. Default 0: no periodic
	// save; otherwise 100ms to 24h.
	Interval time.Duration
	// Perm is the state file's permission bits. Default 0600.
	Perm fs.FileMode
	// Clock times the periodic saves and the retries of failed ones, and
	// stamps the names of corrupt files moved aside. Default
	// core.SystemClock(). Give it the breakers' clock (Manager.Clock), so
	// that a test drives both with one core.FakeClock.
	Clock core.Clock
	// Logger receives what the store cannot return: a file that could not
	// be loaded, a failed background save and its recovery. Default
	// slog.Default().
	Logger *slog.Logger
}

// check fills in the defaults and reports every bad field.
func (c *FileConfig) check() error {
	ck := check.New("store.FileConfig.", configError)
	if c.Path == "" {
		ck.Fail("Path", c.Path, "is required: the state file, in a folder that exists")
	}
	if c.Interval != 0 && (c.Interval < 100*time.Millisecond || c.Interval > 24*time.Hour) {
		ck.Fail("Interval", c.Interval, "must be between 100ms and 24h (0 means no periodic save)")
	}
	if c.Perm&^fs.ModePerm != 0 {
		ck.Fail("Perm", c.Perm, "must hold permission bits only (0 means 0600)")
	} else if c.Perm == 0 {
		c.Perm = 0o600
	}
	checkDependency(ck, "Clock", c.Clock, false, "a core.Clock, or nil for core.SystemClock()")
	if c.Clock == nil {
		c.Clock = core.SystemClock()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return ck.Err()
}

// LoadError reports a state file that could not be loaded. The store that
// met it keeps working: its breakers start Closed and it writes a fresh file.
// It matches ErrCorrupt when the file's content is invalid; otherwise Err is
// the error that reading the file returned.
type LoadError struct {
	// Path is the state file.
	Path string
	// MovedTo is where the file was moved aside; empty when that failed.
	MovedTo string
	// Err is the cause.
	Err error
	// MoveErr is why the file could not be moved aside, if it could not. The
	// store then leaves the file as it is and saves nothing.
	MoveErr error
}

func (e *LoadError) Error() string {
	where := "moved aside to " + e.MovedTo
	if e.MoveErr != nil {
		where = fmt.Sprintf("could not move it aside (%v), so nothing will be saved over it", e.MoveErr)
	}
	return fmt.Sprintf("bulwark: state file %s: %v; %s; breakers start Closed", e.Path, e.Err, where)
}

// Unwrap returns the cause.
func (e *LoadError) Unwrap() error { return e.Err }

// FileStore keeps breakers' state in one file, so that it survives a
// restart.
//
// NewFileStore loads the file; Attach and AttachManager restore each breaker
// from it before following its transitions. Every transition marks the store
// dirty and wakes one writer goroutine, which saves the latest state of
// every breaker; transitions that come while it writes are coalesced into
// its next save, so a slow disk never slows calls. Close saves once more and
// stops the writer.
//
// Saves are atomic: the file is written to a temporary file in the same
// folder (the state file's name plus ".tmp"), synced, renamed over the old
// one, and the folder is synced. A crash leaves either the old file or the
// new one. Only one FileStore, in one process, may use a file at a time.
type FileStore struct {
	path  string
	cfg   FileConfig
	clock core.Clock
	log   *slog.Logger

	kick chan struct{} // capacity 1: a save is wanted
	stop chan struct{} // closed by Close
	done chan struct{} // closed when the writer has returned

	mu        sync.Mutex
	pending   map[string]core.Snapshot // loaded records not yet applied to a breaker
	attached  map[string]*fileAttachment
	overrides map[string]Override // the settings overrides kept, by endpoint
	closed    bool
	loadErr   error
	noSave    error // set when a bad file could not be moved aside

	// Owned by the writer goroutine; finalErr is read after done closes.
	last     []byte // bytes of the last file written or loaded
	failing  bool
	finalErr error
	writes   atomic.Int64 // files written, for tests
}

type fileAttachment struct {
	b      *core.Breaker
	cancel func() // nil until the breaker is restored and followed
}

// NewFileStore returns a store that keeps state in the file at cfg.Path,
// and loads that file.
//
// A missing file is a fresh start. A file that cannot be read or is not a
// valid state file is not fatal: it is moved aside to
// "<path>.corrupt-<UTC timestamp>" (never deleted), a warning is logged,
// LoadErr returns a *LoadError naming the file and the cause, every breaker
// starts Closed, and a fresh file is written. NewFileStore itself fails only
// on a bad configuration (a *core.ConfigError for every bad field, joined
// with errors.Join) or a missing folder.
func NewFileStore(cfg FileConfig) (*FileStore, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	path := cfg.Path
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("bulwark: file store %s: folder: %w", path, err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("bulwark: file store %s: %s is not a folder", path, dir)
	}
	s := &FileStore{
		path: path, cfg: cfg, clock: cfg.Clock, log: cfg.Logger,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		pending: make(map[string]core.Snapshot), attached: make(map[string]*fileAttachment),
		overrides: make(map[string]Override),
	}
	s.load()
	go s.run()
	return s, nil
}

// LoadErr returns the *LoadError met when NewFileStore loaded the file, or
// nil when it loaded or was absent.
func (s *FileStore) LoadErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loadErr
}

// load reads the state file into pending, or moves a bad one aside.
func (s *FileStore) load() {
	data, err := readStateFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	var recs []core.Snapshot
	var ovs []Override
	if err == nil {
		recs, ovs, err = decodeFile(data)
	}
	if err == nil {
		for _, r := range recs {
			s.pending[r.Endpoint] = r
		}
		for _, o := range ovs {
			s.overrides[o.Endpoint] = o
		}
		s.last = data
		return
	}
	le := &LoadError{Path: s.path, Err: err}
	le.MovedTo, le.MoveErr = s.moveAside()
	if le.MoveErr != nil {
		s.noSave = le
	}
	s.loadErr = le
	s.log.Warn("bulwark: could not load the breaker state file; breakers start Closed",
		"path", s.path, "moved_to", le.MovedTo, "err", err)
	s.markDirty() // write a fresh file at once
}

// readStateFile reads the file, refusing one too large to be a state file
// before reading it.
func readStateFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if fi.Size() > fileMaxSize {
		return nil, corruptf("%d bytes, more than the %d a state file may hold", fi.Size(), fileMaxSize)
	}
	data, err := io.ReadAll(io.LimitReader(f, fileMaxSize+1))
	if err == nil && len(data) > fileMaxSize {
		return nil, corruptf("more than the %d bytes a state file may hold", fileMaxSize)
	}
	return data, err
}

// moveAside renames the state file to a free "<path>.corrupt-<timestamp>"
// name and returns it.
func (s *FileStore) moveAside() (string, error) {
	stamp := s.path + ".corrupt-" + s.clock.Now().UTC().Format("20060102T150405Z")
	for i := range 1000 {
		to := stamp
		if i > 0 {
			to += "-" + strconv.Itoa(i)
		}
		// Rename replaces an existing file: never pick a name in use.
		if _, err := os.Lstat(to); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := os.Rename(s.path, to); err != nil {
			return "", err
		}
		_ = syncDir(filepath.Dir(s.path))
		return to, nil
	}
	return "", fmt.Errorf("no free name like %s", stamp)
}

// Overrides returns the settings overrides the store keeps, sorted by
// endpoint: those NewFileStore loaded from the file, as SetOverride has
// changed them since. Each has its document (Settings is never nil).
func (s *FileStore) Overrides() []Override {
	s.mu.Lock()
	out := make([]Override, 0, len(s.overrides))
	for _, o := range s.overrides {
		out = append(out, cloneOverride(o))
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Override) int { return strings.Compare(a.Endpoint, b.Endpoint) })
	return out
}

// SetOverride keeps o, the latest settings override of its endpoint, in
// place of the one kept before; with Settings nil it removes the
// endpoint's override. Like a transition, it is saved by the next write
// (coalesced, in the background) and by Close; it never waits for the
// disk. The store keeps a copy of the document. An override it cannot
// store (an invalid endpoint, a document that is not JSON of at most 64
// KiB, an invalid instance ID, a version past 2^53) is logged and
// dropped, and so is one given after Close.
func (s *FileStore) SetOverride(o Override) {
	if err := checkOverride(&o); err != nil {
		s.log.Warn("bulwark: file store: settings override not kept", "path", s.path, "endpoint", o.Endpoint, "err", err)
		return
	}
	o = cloneOverride(o)
	o.At = clampFileTime(o.At)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.log.Warn("bulwark: file store: settings override after Close not kept", "path", s.path, "endpoint", o.Endpoint)
		return
	}
	if o.Settings == nil {
		delete(s.overrides, o.Endpoint)
	} else {
		s.overrides[o.Endpoint] = o
	}
	s.mu.Unlock()
	s.markDirty()
}

// Attach restores b from the stored record of its endpoint, if there is one,
// and saves b's state from then on. Attach b before it takes calls; attaching
// it again is a no-op. A record that b cannot take is reported and
// dropped, and b is followed all the same.
func (s *FileStore) Attach(b *core.Breaker) error {
	if b == nil {
		return errors.New("bulwark: file store: Attach(nil)")
	}
	name := b.Name()
	if err := core.ValidateEndpoint(name); err != nil {
		return fmt.Errorf("bulwark: file store %s: %w", s.path, err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if a, ok := s.attached[name]; ok {
		s.mu.Unlock()
		if a.b == b {
			return nil
		}
		return fmt.Errorf("bulwark: file store %s: another breaker for %q is already attached", s.path, name)
	}
	rec, saved := s.pending[name]
	a := &fileAttachment{b: b}
	s.attached[name] = a // reserves the name; saves use rec until a.cancel is set
	s.mu.Unlock()

	// Restore outside s.mu: it runs b's listeners, which may call the store.
	var err error
	if saved {
		if err = replicaOf(b).restore(rec); err != nil {
			err = fmt.Errorf("bulwark: file store %s: %w", s.path, err)
		}
	}
	cancel := b.OnStateChange(s.onStateChange)

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		cancel()
		return ErrClosed
	}
	a.cancel = cancel
	delete(s.pending, name)
	s.mu.Unlock()
	s.markDirty() // the restored state may differ from the record (Open that half-opened)
	return err
}

// AttachManager attaches every breaker m has and, through
// Manager.OnEndpoint, every breaker it creates later, before that breaker's
// first use. It then creates m's endpoint for every saved record that has
// none yet (Manager.Endpoint), so that the restored breakers show in status
// and metrics before any call reaches them. A record that m cannot take
// (past ManagerConfig.MaxEndpoints) is logged, kept in the file and applied
// if m creates its endpoint later. It returns the errors of the breakers
// m already has; later ones are logged.
func (s *FileStore) AttachManager(m *core.Manager) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	var (
		mu        sync.Mutex
		errs      []error
		returning = true
	)
	m.OnEndpoint(func(e *core.Endpoint) {
		b := e.Breaker()
		err := s.Attach(b)
		if err == nil || errors.Is(err, ErrClosed) {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if returning {
			errs = append(errs, err)
			return
		}
		s.log.Warn("bulwark: file store could not attach a breaker", "path", s.path, "endpoint", b.Name(), "err", err)
	})
	s.createSaved(m)
	mu.Lock()
	defer mu.Unlock()
	returning = false
	return errors.Join(errs...)
}

// createSaved creates m's endpoint for every record not applied yet; the
// Manager's hook attaches and restores it. The records m refuses are
// reported in one warning.
func (s *FileStore) createSaved(m *core.Manager) {
	s.mu.Lock()
	names := make([]string, 0, len(s.pending))
	for name := range s.pending {
		names = append(names, name)
	}
	s.mu.Unlock()
	slices.Sort(names)
	var refused []string
	var cause error
	for _, name := range names {
		if _, err := m.Endpoint(name); err != nil {
			refused = append(refused, name)
			cause = err
		}
	}
	if len(refused) > 0 {
		const shown = 5
		s.log.Warn("bulwark: file store: saved breakers not restored; their records are kept in the file",
			"path", s.path, "count", len(refused), "endpoints", refused[:min(len(refused), shown)], "err", cause)
	}
}

// onStateChange is every attached breaker's listener. It runs on the
// breaker's transition path, so it only wakes the writer.
func (s *FileStore) onStateChange(events.StateChange) { s.markDirty() }

func (s *FileStore) markDirty() {
	select {
	case s.kick <- struct{}{}:
	default: // a save is already due; it will read the latest state
	}
}

// Close stops following the breakers, saves their final state and stops the
// writer. A breaker held by a component of this process
// (core.Replication.HeldHere) is saved HalfOpen, released, since its owner
// stops with the process; any other hold is saved as it is. It returns that save's error, or, if ctx ends first, an error
// wrapping ctx.Err() (the save then still completes in the background).
// Calling Close again returns nil at once.
func (s *FileStore) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for _, a := range s.attached {
		if a.cancel != nil {
			a.cancel()
		}
	}
	close(s.stop)
	s.mu.Unlock()
	select {
	case <-s.done:
		return s.finalErr
	case <-ctx.Done():
		return fmt.Errorf("bulwark: file store %s: close: %w", s.path, ctx.Err())
	}
}

// Retry delays after failed saves, doubling from the first to the last.
const (
	fileMinRetry = time.Second
	fileMaxRetry = time.Minute
)

// run is the writer goroutine: the only one that writes the file.
func (s *FileStore) run() {
	defer close(s.done)
	var tick, retry core.Timer
	if s.cfg.Interval > 0 {
		tick = s.clock.NewTimer(s.cfg.Interval)
	}
	backoff := fileMinRetry
	for {
		select {
		case <-s.kick:
		case <-fileTimerC(tick):
			tick = s.clock.NewTimer(s.cfg.Interval)
		case <-fileTimerC(retry):
			retry = nil
		case <-s.stop:
			for _, t := range [...]core.Timer{tick, retry} {
				if t != nil {
					t.Stop()
				}
			}
			s.finalErr = s.save(true)
			return
		}
		if err := s.save(false); err != nil {
			if retry == nil {
				retry = s.clock.NewTimer(backoff)
				backoff = min(2*backoff, fileMaxRetry)
			}
			continue
		}
		backoff = fileMinRetry
	}
}

// fileTimerC returns t's channel, or nil (which never delivers) for no timer.
func fileTimerC(t core.Timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C()
}

// save writes the current state of every attached breaker, and the records
// not yet applied, unless the file already holds exactly that. final is
// the save of Close. A failure is logged when it starts a run of failures
// and when the run ends.
func (s *FileStore) save(final bool) error {
	err := s.saveOnce(final)
	switch {
	case err != nil && !s.failing:
		s.failing = true
		s.log.Warn("bulwark: could not save the breaker state file; retrying", "path", s.path, "err", err)
	case err != nil:
		s.log.Debug("bulwark: could not save the breaker state file", "path", s.path, "err", err)
	case s.failing:
		s.failing = false
		s.log.Info("bulwark: saved the breaker state file again", "path", s.path)
	}
	return err
}

func (s *FileStore) saveOnce(final bool) error {
	s.mu.Lock()
	if s.noSave != nil {
		s.mu.Unlock()
		return s.noSave
	}
	recs := make([]core.Snapshot, 0, len(s.pending)+len(s.attached))
	for _, r := range s.pending {
		recs = append(recs, r)
	}
	breakers := make([]*core.Breaker, 0, len(s.attached))
	for _, a := range s.attached {
		if a.cancel != nil {
			breakers = append(breakers, a.b)
		}
	}
	ovs := make([]Override, 0, len(s.overrides))
	for _, o := range s.overrides {
		ovs = append(ovs, o) // never changed in place: SetOverride replaces
	}
	s.mu.Unlock()
	now := s.clock.Now()
	for _, b := range breakers {
		snap := b.Snapshot()
		if final {
			snap = endHoldHere(b, snap, now)
		}
		recs = append(recs, storableSnapshot(snap))
	}
	data, err := encodeFile(recs, ovs...)
	if err != nil {
		return fmt.Errorf("bulwark: file store %s: encode: %w", s.path, err)
	}
	if bytes.Equal(data, s.last) {
		return nil
	}
	if err := writeFileAtomic(s.path, data, s.cfg.Perm); err != nil {
		return fmt.Errorf("bulwark: file store %s: %w", s.path, err)
	}
	s.last = data
	s.writes.Add(1)
	return nil
}

// endHoldHere returns snap, a snapshot of b, as the process leaves it: a
// hold taken or renewed by a component of this process ends with the
// process, so it is saved as released (HalfOpen) rather than for the rest
// of its lease. A hold restored or applied from another instance keeps its
// lease, and an operator's hold (ForceOpen) is kept until released.
func endHoldHere(b *core.Breaker, snap core.Snapshot, now time.Time) core.Snapshot {
	if snap.State != events.ForcedOpen || snap.HeldBy == "" || !replicaOf(b).heldHere() {
		return snap
	}
	snap.State = events.HalfOpen
	snap.Reason = "released: " + snap.HeldBy + " stopped with the process"
	snap.LastStateChange = now.UTC()
	snap.HeldBy, snap.HoldUntil = "", time.Time{}
	snap.ConsecutiveSuccesses = 0
	return snap
}

// fileRestoredPrefix is what Breaker.Restore puts before a restored reason.
const fileRestoredPrefix = "restored: "

// storableSnapshot prepares a live snapshot for the file. It keeps the reason a
// breaker entered its state, not that it was restored, so that reasons do
// not grow with every restart.
func storableSnapshot(s core.Snapshot) core.Snapshot {
	for strings.HasPrefix(s.Reason, fileRestoredPrefix) {
		s.Reason = s.Reason[len(fileRestoredPrefix):]
	}
	return sanitizeRecord(s)
}

// writeFileAtomic replaces the file at path with data so that a crash at
// any point leaves the old content or the new, never a mix.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	err = f.Chmod(perm) // a leftover temporary file keeps its old mode
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync() // the data is on disk before the rename makes it the file
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path)) // the rename itself is on disk
}

// syncDir makes a rename in dir durable. Windows cannot sync a folder and
// needs nothing more there.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
