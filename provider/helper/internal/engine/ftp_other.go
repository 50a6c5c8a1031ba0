//go:build !linux

package engine

import "errors"

func unloadModule(string) error { return errors.New("kernel modules are only unloaded on Linux") }
