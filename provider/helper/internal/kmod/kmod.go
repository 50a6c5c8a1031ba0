//go:build linux

// Package kmod loads kernel modules with the system's modprobe, each run bounded by a deadline.
package kmod

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Modprobe returns a loader that runs modprobe, killing it (with everything it started) when it has not finished
// within limit; nil when no modprobe is installed.
func Modprobe(limit time.Duration) func(module string, params ...string) error {
	path, err := exec.LookPath("modprobe")
	if err != nil {
		for _, p := range []string{"/sbin/modprobe", "/usr/sbin/modprobe"} {
			if _, err := exec.LookPath(p); err == nil {
				path = p
				break
			}
		}
	}
	if path == "" {
		return nil
	}
	return loader(path, limit)
}

// running holds the process groups of the modprobes still running, so KillAll can end them.
var running struct {
	sync.Mutex
	pgids   map[int]bool
	stopped bool
}

// KillAll kills every running modprobe's process group and refuses to start more: the helper calls it before it exits
// on a hang, so no modprobe it started outlives it.
func KillAll() {
	running.Lock()
	defer running.Unlock()
	running.stopped = true
	for pgid := range running.pgids {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
}

func loader(path string, limit time.Duration) func(module string, params ...string) error {
	return func(module string, params ...string) error {
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		defer cancel()
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, path, append([]string{module}, params...)...)
		cmd.Stderr = &stderr
		// Its own process group: an install command of modprobe.d (a shell and its children) dies with it.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		// A process that escaped the group may still hold stderr open; do not wait for it.
		cmd.WaitDelay = time.Second
		if err := start(cmd); err != nil {
			return fmt.Errorf("modprobe %s could not be started: %w", module, err)
		}
		err := cmd.Wait()
		running.Lock()
		delete(running.pgids, cmd.Process.Pid)
		running.Unlock()
		if err != nil {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return timeoutError{module, limit}
			}
			msg := strings.TrimSpace(stderr.String())
			var ee *exec.ExitError
			if msg == "" || !errors.As(err, &ee) {
				msg = err.Error()
			}
			return errors.New(msg)
		}
		return nil
	}
}

// timeoutError is a modprobe killed at its deadline; it matches os.ErrDeadlineExceeded.
type timeoutError struct {
	module string
	limit  time.Duration
}

func (e timeoutError) Error() string {
	return fmt.Sprintf("modprobe %s did not finish within %s (killed)", e.module, e.limit)
}

func (e timeoutError) Unwrap() error { return os.ErrDeadlineExceeded }

// start starts cmd and records its process group, under the lock KillAll takes, so none escapes it.
func start(cmd *exec.Cmd) error {
	running.Lock()
	defer running.Unlock()
	if running.stopped {
		return errors.New("the helper is exiting")
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	if running.pgids == nil {
		running.pgids = map[int]bool{}
	}
	running.pgids[cmd.Process.Pid] = true
	return nil
}
