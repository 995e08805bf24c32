package store

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// TestFileStoreSurvivesSIGKILL kills a process in the middle of its writes,
// again and again, and checks that every file it leaves decodes.
func TestFileStoreSurvivesSIGKILL(t *testing.T) {
	switch runtime.GOOS {
	case "windows", "plan9", "js", "wasip1", "ios", "android":
		t.Skipf("no SIGKILL or no subprocesses on %s", runtime.GOOS)
	}
	runs := 1000
	if testing.Short() {
		runs = 100
	}
	dir := t.TempDir()
	writer := buildCrashWriter(t, dir)
	path := filepath.Join(dir, "breakers.state")
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("seed %d", seed)

	begin := time.Now()
	everWritten, midWrite := false, 0
	for i := range runs {
		// Mostly kill once the writer is writing; now and then at a random
		// point of its start, load included.
		early := i%10 == 0
		out, wasWriting := crashOnce(t, writer, path, early, time.Duration(rng.Int64N(int64(3*time.Millisecond))))
		everWritten = everWritten || wasWriting
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) && !everWritten {
			continue // killed before the first write completed
		}
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		everWritten = true
		if _, _, err := decodeFile(data); err != nil {
			t.Fatalf("run %d: the file a kill left does not decode: %v\nwriter: %s", i, err, out)
		}
		if _, err := os.Stat(path + ".tmp"); err == nil {
			midWrite++ // killed between creating the temporary file and the rename
		}
	}
	if matches, _ := filepath.Glob(path + ".corrupt-*"); len(matches) > 0 {
		t.Fatalf("a writer found a bad file and moved it aside: %v", matches)
	}
	if !everWritten {
		t.Fatal("no writer ever wrote the file")
	}
	t.Logf("%d kills in %v; %d left a temporary file behind", runs, time.Since(begin).Round(time.Millisecond), midWrite)

	// The last survivor loads in a normal store too.
	s, err := NewFileStore(FileConfig{Path: path, Logger: fileQuiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.LoadErr(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// buildCrashWriter builds internal/filecrash into dir. It is built
// without the race detector whatever the test's flags, so that a thousand
// starts stay quick.
func buildCrashWriter(t *testing.T, dir string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(goTool); err != nil {
			t.Skip("the go command is needed to build the crash test's writer and was not found")
		}
	}
	bin := filepath.Join(dir, "filecrash")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	out, err := exec.Command(goTool, "build", "-o", bin, "github.com/bulwark-go/bulwark/store/internal/filecrash").CombinedOutput()
	if err != nil {
		t.Fatalf("building the crash test's writer: %v\n%s", err, out)
	}
	return bin
}

// crashOnce starts a writer writing to path and kills it with SIGKILL after
// delay: counted from its start when early, from its first write otherwise.
// It returns the writer's output and whether it had written.
func crashOnce(t *testing.T, writer, path string, early bool, delay time.Duration) (string, bool) {
	t.Helper()
	cmd := exec.Command(writer, path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	readyc := make(chan bool, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		readyc <- line == "ready\n"
	}()
	wrote := false
	if !early {
		select {
		case wrote = <-readyc:
		case <-time.After(30 * time.Second):
		}
		if !wrote {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("writer did not start writing: %s", stderr.String())
		}
	}
	time.Sleep(delay)
	if err := cmd.Process.Kill(); err != nil {
		_ = cmd.Wait()
		t.Fatalf("kill: %v; writer: %s", err, stderr.String())
	}
	err = cmd.Wait()
	if !early {
		// Only the kill may end it: any other exit is a writer failure.
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != -1 {
			t.Fatalf("writer exited by itself (%v): %s", err, stderr.String())
		}
	}
	select {
	case r := <-readyc:
		wrote = wrote || r
	default:
	}
	return stderr.String(), wrote
}
