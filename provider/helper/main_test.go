package main

import (
	"testing"
	"time"
)

func TestParseArgsTimeoutSeconds(t *testing.T) {
	for _, c := range []struct {
		args    []string
		ok      bool
		request time.Duration
		call    time.Duration
		dryRun  bool
	}{
		{[]string{"serve"}, true, 30 * time.Second, 20 * time.Second, false},
		{[]string{"apply", "--timeout-seconds", "5"}, true, 5 * time.Second, 3 * time.Second, false},
		{[]string{"serve", "--timeout-seconds=1"}, true, time.Second, time.Second, false},
		{[]string{"restore", "--timeout-seconds", "3600", "--dry-run"}, true, time.Hour, 40 * time.Minute, true},
		{[]string{"apply", "--timeout-seconds", "0"}, false, 0, 0, false},
		{[]string{"apply", "--timeout-seconds", "3601"}, false, 0, 0, false},
		{[]string{"apply", "--timeout-seconds", "2.5"}, false, 0, 0, false},
		{[]string{"apply", "--timeout-seconds"}, false, 0, 0, false},
		{[]string{"apply", "--timeout-seconds", "5", "--timeout-seconds", "6"}, false, 0, 0, false},
		{[]string{"apply", "--dry-run"}, false, 0, 0, false},
		{[]string{"bogus"}, false, 0, 0, false},
		{nil, false, 0, 0, false},
	} {
		_, dryRun, lim, ok := parseArgs(c.args)
		if ok != c.ok || ok && (lim.request != c.request || lim.call != c.call || dryRun != c.dryRun) {
			t.Errorf("%q: ok %v, %+v, dry-run %v", c.args, ok, lim, dryRun)
		}
	}
}
