//go:build linux

package ledger_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger/ledgertest"
)

// Each way a request changes the stacks directory (an append, a file renamed in, a removal, a mode change) wakes the
// watch; ending its context closes the watch; removing the directory reports the watch lost; no directory, no watch.
// Each change runs under a watch of its own, started after the setup, so that the event seen is the change's.
func TestWatchSeesEachChangeAndTheDirectoryGoing(t *testing.T) {
	ledgertest.Use(t)
	dir := filepath.Join(ledger.Dir, "stacks")
	if _, err := ledger.Watch(t.Context()); err == nil {
		t.Fatal("a watch of a missing stacks directory started")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	a, b := filepath.Join(dir, ledger.FileName("a")), filepath.Join(dir, ledger.FileName("b"))
	write := func(path, text string) {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// closed waits until the watch's channel is closed (a value pending before is drained).
	closed := func(what string, ch <-chan struct{}) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case _, ok := <-ch:
				if !ok {
					return
				}
			case <-deadline:
				t.Fatalf("%s: the watch is not closed within 5 s", what)
			}
		}
	}
	for _, c := range []struct {
		what          string
		setup, change func()
	}{
		{"append", func() { write(a, "{}\n") }, func() {
			f, err := os.OpenFile(a, os.O_APPEND|os.O_WRONLY, 0)
			if err == nil {
				_, err = f.WriteString("{}\n")
				f.Close()
			}
			if err != nil {
				t.Fatal(err)
			}
		}},
		{"rename in", func() { write(filepath.Join(dir, ".b.tmp"), "{}\n") }, func() {
			if err := os.Rename(filepath.Join(dir, ".b.tmp"), b); err != nil {
				t.Fatal(err)
			}
		}},
		{"remove", func() {}, func() {
			if err := os.Remove(a); err != nil {
				t.Fatal(err)
			}
		}},
		{"chmod", func() {}, func() {
			if err := os.Chmod(b, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		c.setup()
		ctx, cancel := context.WithCancel(t.Context())
		ch, err := ledger.Watch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c.change()
		select {
		case _, ok := <-ch:
			if !ok {
				t.Fatalf("%s: the watch was lost", c.what)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no event within 5 s", c.what)
		}
		cancel()
		closed(c.what+", then the context ended", ch)
	}

	ch, err := ledger.Watch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	closed("the directory removed", ch)
}
