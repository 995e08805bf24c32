package check

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

type problem struct {
	field string
	value any
	rule  string
}

func (p *problem) Error() string { return fmt.Sprintf("%s = %v: %s", p.field, p.value, p.rule) }

func newProblem(f string, v any, r string) error { return &problem{f, v, r} }

func TestDefaultsAndEveryProblem(t *testing.T) {
	c := New("pkg.Config.", newProblem)
	n, bad, f, d := 0, 7, 0.0, time.Duration(0)
	c.Int("N", &n, 5, 1, 10)
	c.Int("Bad", &bad, 5, 1, 3)
	c.Float("F", &f, 0.5, 0, 1)
	c.Duration("D", &d, time.Second, time.Millisecond, time.Hour)
	nan := 0.0 / func() float64 { return 0 }()
	c.Sub("Inner").Float("Rate", &nan, 1, 0, 100)
	if n != 5 || f != 0.5 || d != time.Second || bad != 7 {
		t.Errorf("defaults: n=%d f=%v d=%v bad=%d", n, f, d, bad)
	}
	err := c.Err()
	var p *problem
	if !errors.As(err, &p) || p.field != "pkg.Config.Bad" {
		t.Fatalf("first problem = %v", err)
	}
	if !strings.Contains(err.Error(), "pkg.Config.Inner.Rate") || strings.Count(err.Error(), "\n") != 1 {
		t.Errorf("want both problems, got %q", err)
	}
}

func TestPrintable(t *testing.T) {
	for s, want := range map[string]bool{
		"": true, "game day – ok": true, "line\nbreak": false, "tab\t": false, "\xff": false, "\u2028": false,
	} {
		if got := Printable(s); got != want {
			t.Errorf("Printable(%q) = %v, want %v", s, got, want)
		}
	}
}
