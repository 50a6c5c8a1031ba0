// Package engine runs protocol operations against the kernel: ensure/merge semantics, a per-batch view of the
// table (one dump instead of one GET per op), module loading and the mapping of errnos to stable error codes.
package engine

import "github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"

// Kernel is the IPVS netlink surface the engine needs; *ipvs.Conn implements it on Linux.
type Kernel interface {
	NewService(ipvs.Service) error
	SetService(ipvs.Service) error
	DelService(ipvs.ServiceKey) error
	GetService(ipvs.ServiceKey) (ipvs.Service, bool, error)
	Services() ([]ipvs.Service, error)
	Dests(ipvs.ServiceKey) ([]ipvs.Dest, error)
	NewDest(ipvs.ServiceKey, ipvs.Dest) error
	SetDest(ipvs.ServiceKey, ipvs.Dest) error
	DelDest(ipvs.ServiceKey, ipvs.DestKey) error
	Daemons() ([]ipvs.Daemon, error)
	NewDaemon(ipvs.Daemon) error
	DelDaemon(state uint32) error
	Timeouts() (ipvs.Timeouts, error)
	SetTimeouts(ipvs.Timeouts) error
	Info() (ipvs.Info, error)
	Zero(*ipvs.ServiceKey) error
	Flush() error
	// Pipeline sends writes in order, many to a system call, and returns each one's error (nil when ACKed).
	Pipeline([]ipvs.Write) []error
}

// Modprober loads a kernel module with optional parameters ("ports=21"); nil error when it is loaded afterwards, an error matching os.ErrDeadlineExceeded
// when modprobe did not finish in time.
type Modprober func(module string, params ...string) error
