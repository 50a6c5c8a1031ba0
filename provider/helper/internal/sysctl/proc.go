package sysctl

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// FS reads and writes settings by full name; Proc is the real one, tests use their own.
type FS interface {
	Read(name string) (Value, error)
	Write(name string, v Value) error
}

// ErrMissing (errors.Is) is a setting whose file is absent: this kernel lacks it, or the module that registers it
// is not loaded.
var ErrMissing = errors.New("sysctl file is absent")

// MissingError names the setting that is absent and why it may be.
type MissingError struct {
	Name, Path string
	Setting    Setting
}

func (e *MissingError) Error() string {
	msg := fmt.Sprintf("%s does not exist on this kernel (no %s)", e.Name, e.Path)
	switch {
	case e.Setting.Module != "":
		msg += "; it appears once the " + e.Setting.Module + " module is loaded"
	case e.Setting.Config != "":
		msg += "; it needs a kernel built with " + e.Setting.Config
	}
	return msg
}

func (e *MissingError) Is(target error) bool { return target == ErrMissing }

// Proc is the FS of /proc/sys under root ("/proc/sys"): net.ipv4.vs.x is root/net/ipv4/vs/x. Files are opened
// with O_NOFOLLOW and never created.
func Proc(root string) FS { return procFS{root: root} }

type procFS struct{ root string }

func (p procFS) path(name string) (Setting, string, error) {
	s, ok := Lookup(name)
	if !ok {
		s, ok = HostSetting(name)
	}
	if !ok {
		return Setting{}, "", fmt.Errorf("%q is not a sysctl DirectorSettings or RealServerHost manages", name)
	}
	return s, filepath.Join(p.root, filepath.FromSlash(strings.ReplaceAll(name, ".", "/"))), nil
}

func (p procFS) Read(name string) (Value, error) {
	s, path, err := p.path(name)
	if err != nil {
		return Value{}, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return Value{}, p.openError(s, path, err)
	}
	defer f.Close()
	// The largest content is a cpulist of 8192 CPUs; procfs answers a read of any size.
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return Value{}, fmt.Errorf("reading %s (%s): %w", name, path, err)
	}
	return s.parseText(string(b))
}

// Write writes the value in one write(2) from offset 0, as procfs requires (est_cpulist ignores any other).
func (p procFS) Write(name string, v Value) error {
	s, path, err := p.path(name)
	if err != nil {
		return err
	}
	if v.kind != s.Kind {
		return fmt.Errorf("writing %s: a %s value does not fit this %s setting", name, v.kind, s.Kind)
	}
	// O_TRUNC as sysctl(8) does: procfs ignores it, and a plain file (tests) then holds exactly the value.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return p.openError(s, path, err)
	}
	_, err = f.Write([]byte(v.text + "\n"))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// EINVAL here is the kernel refusing the value (its own rule, e.g. a newer kernel's tighter range).
		return fmt.Errorf("writing %s = %q (%s): %w", name, v.text, path, err)
	}
	return nil
}

func (p procFS) openError(s Setting, path string, err error) error {
	switch {
	case errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return &MissingError{Name: s.Name, Path: path, Setting: s}
	case errors.Is(err, syscall.ELOOP):
		return fmt.Errorf("%s: %s is a symbolic link, which is refused: %w", s.Name, path, err)
	}
	return fmt.Errorf("%s: %w", s.Name, err)
}
