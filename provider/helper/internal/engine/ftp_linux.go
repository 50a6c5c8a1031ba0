//go:build linux

package engine

import "golang.org/x/sys/unix"

// unloadModule is delete_module(2) with O_NONBLOCK: EWOULDBLOCK at once while the module is in use, where modprobe -r
// would also unload the modules it depends on (ip_vs itself, with the table) once they look unused.
func unloadModule(name string) error { return unix.DeleteModule(name, unix.O_NONBLOCK) }
