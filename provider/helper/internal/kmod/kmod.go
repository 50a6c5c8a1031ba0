// Package kmod loads kernel modules with the system's modprobe.
package kmod

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// Modprobe returns a loader that runs modprobe, or nil when no modprobe is installed.
func Modprobe() func(module string) error {
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
	return func(module string) error {
		var stderr bytes.Buffer
		cmd := exec.Command(path, module)
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			msg := strings.TrimSpace(stderr.String())
			var ee *exec.ExitError
			if msg == "" || !errors.As(err, &ee) {
				msg = err.Error()
			}
			return fmt.Errorf("%s", msg)
		}
		return nil
	}
}
