package ipvs

import (
	"errors"
	"syscall"
)

// ErrNoFamily means the IPVS generic netlink family is not registered: the ip_vs module is not loaded.
var ErrNoFamily = errors.New("the IPVS generic netlink family is not registered (module ip_vs not loaded)")

// Errno extracts the kernel's errno from a netlink error, 0 if there is none.
func Errno(err error) syscall.Errno {
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return 0
}
