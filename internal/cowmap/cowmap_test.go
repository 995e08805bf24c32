package cowmap

import (
	"errors"
	"strconv"
	"sync"
	"testing"
)

func TestBoundAndCreateOnce(t *testing.T) {
	m := Map[string, int]{Max: 2}
	calls := 0
	mk := func(k string) (int, error) { calls++; return len(k), nil }
	for _, k := range []string{"a", "bb", "a"} {
		if _, err := m.LoadOrCreate(k, mk); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 2 {
		t.Errorf("create ran %d times, want 2", calls)
	}
	if _, err := m.LoadOrCreate("ccc", mk); !errors.Is(err, ErrFull) {
		t.Errorf("third key: err = %v, want ErrFull", err)
	}
	if m.Store("ccc", 3) {
		t.Error("Store past Max reported true")
	}
	if !m.Store("a", 9) {
		t.Error("Store of an existing key refused")
	}
	m.Delete("a")
	if _, ok := m.Load("a"); ok || m.Len() != 1 {
		t.Errorf("after Delete: len %d", m.Len())
	}
}

func TestCreateErrorStoresNothing(t *testing.T) {
	m := Map[string, int]{Max: 4}
	boom := errors.New("boom")
	if _, err := m.LoadOrCreate("x", func(string) (int, error) { return 0, boom }); err != boom {
		t.Fatalf("err = %v", err)
	}
	if m.Len() != 0 {
		t.Error("a failed create was stored")
	}
}

func TestConcurrentReadersSeeWholeMaps(t *testing.T) {
	m := Map[int, string]{Max: 1000}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				v, err := m.LoadOrCreate(i, func(k int) (string, error) { return strconv.Itoa(k), nil })
				if err != nil || v != strconv.Itoa(i) {
					t.Errorf("key %d: %q, %v", i, v, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if m.Len() != 500 {
		t.Errorf("len = %d, want 500", m.Len())
	}
}
