package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestBadFlagsExitTwoWithAClearMessage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-upstream", "sideways"}, "-upstream"},
		{[]string{"-admin-token", "short"}, "at least 16"},
		{[]string{"-redis-url", "http://nope"}, "-redis-url"},
		{[]string{"-no-such-flag"}, "no-such-flag"},
		{[]string{"extra"}, "unexpected arguments"},
	} {
		var out, errOut bytes.Buffer
		if code := run(c.args, &out, &errOut); code != 2 {
			t.Errorf("%v: exit %d, want 2", c.args, code)
		}
		if !strings.Contains(errOut.String(), c.want) {
			t.Errorf("%v: message %q does not mention %q", c.args, errOut.String(), c.want)
		}
	}
}

func TestUpstreamFlapsOnSchedule(t *testing.T) {
	u := &upstream{mode: modeFlap, started: time.Now()}
	if got := u.current(); got != modeHealthy {
		t.Fatalf("flap starts %s", got)
	}
	u.setMode(modeFailing)
	if u.current() != modeFailing {
		t.Fatal("fixed mode")
	}
}
