//go:build !linux

package health

import "syscall"

// probeSocket opens a nonblocking, close-on-exec socket. Only Linux takes both flags in socket(2); elsewhere (a
// contributor's macOS, where the probers' tests run against loopback servers) they are set after it.
func probeSocket(family, typ int) (int, error) {
	syscall.ForkLock.RLock()
	fd, err := syscall.Socket(family, typ, 0)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return -1, err
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return -1, err
	}
	return fd, nil
}
