package health

import "syscall"

// probeSocket opens a nonblocking, close-on-exec socket in one system call.
func probeSocket(family, typ int) (int, error) {
	return syscall.Socket(family, typ|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
}
