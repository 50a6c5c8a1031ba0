package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/health"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger"
)

// cutMetricsDir takes "health"'s own option, --metrics-dir DIR (an absolute path), out of args; ok is false when
// it is malformed or given to another command.
func cutMetricsDir(args []string) (rest []string, dir string, ok bool) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		val, eq := strings.CutPrefix(a, "--metrics-dir=")
		if a != "--metrics-dir" && !eq {
			rest = append(rest, a)
			continue
		}
		if !eq {
			if i+1 >= len(args) {
				return nil, "", false
			}
			i++
			val = args[i]
		}
		if len(args) == 0 || args[0] != "health" || dir != "" || !filepath.IsAbs(val) {
			fmt.Fprintf(os.Stderr, "ipvs-helper: --metrics-dir takes an absolute directory, once, with the health command only\n")
			return nil, "", false
		}
		dir = val
	}
	return rest, dir, true
}

// runHealth is `ipvs-helper health`: the checker, until SIGTERM or SIGINT. It changes the kernel only under the
// ledger lock, and leaves it as it is when it stops (fail static: a checker that dies depools nothing more and
// restores nothing either; its state file lets the next one carry on).
func runHealth(lim limits, metricsDir string) error {
	// Held while it runs: read-back (dump) reports the checker as running from this lock, and a second checker is
	// refused.
	running, err := health.HoldRunning(filepath.Join(health.StateDir, health.LockFile))
	if err != nil {
		return err
	}
	defer running.Close()
	k, _, perr := openKernel(lim)
	if perr != nil {
		return perr
	}
	logger := func(line string) { fmt.Fprintln(os.Stderr, line) }
	if !ledger.SystemdRuns() {
		logger("ipvs-helper health: systemd is not running here, so nothing restarts this checker if it stops; run it from the init system (see the README)")
	}
	r := &health.Runner{
		Kernel:     k,
		Ledger:     ledger.Open,
		Probe:      health.Probe,
		Reactor:    health.NewReactor,
		Now:        time.Now,
		Log:        logger,
		StatePath:  filepath.Join(health.StateDir, "state.json"),
		MetricsDir: metricsDir,
		Watch:      ledger.Watch,
		Reload:     time.Second,
		// With a live watch, the ledger is re-read on its events; inotify drops none unannounced (an overflow ends
		// the watch), so this re-read covers only what it cannot see (the directories above the stacks directory
		// replaced under it). 30 s: a thirtieth of the per-second re-reads it replaces, and a bound on a missed change
		// (and on the last-pass metric's age) an operator can live with.
		Resync:    30 * time.Second,
		LockWait:  lim.call,
		MaxProbes: 256,
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	logger(fmt.Sprintf("ipvs-helper health %s: checking the real servers the ledger (%s) records checks for", version, ledger.Dir))
	return r.Run(ctx)
}
