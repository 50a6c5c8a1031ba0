//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/engine"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/kmod"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// minKernel is the oldest kernel the helper supports.
var minKernel = ipvs.KernelVersion{Major: 4, Minor: 19}

func modprober(lim limits) engine.Modprober { return kmod.Modprobe(lim.call) }

// killModprobes ends the modprobes still running before the helper exits on a hang.
func killModprobes() { kmod.KillAll() }

// openKernel connects to IPVS, loading ip_vs once if the family is missing.
func openKernel(lim limits) (*ipvs.Conn, ipvs.KernelVersion, *protocol.Error) {
	rel := ipvs.KernelRelease()
	kv := ipvs.ParseKernelRelease(rel)
	if kv.Lacks(minKernel) {
		return nil, kv, &protocol.Error{Code: protocol.CodeUnsupported, Message: fmt.Sprintf("this helper needs Linux %s or newer; this director runs %s.", minKernel, rel)}
	}
	c, err := ipvs.Open(lim.call)
	if errors.Is(err, ipvs.ErrNoFamily) {
		mp := kmod.Modprobe(lim.call)
		if mp == nil {
			return nil, kv, &protocol.Error{Code: protocol.CodeIPVSUnavail, Message: "IPVS is not available: the ip_vs module is not loaded and modprobe is not installed."}
		}
		if lerr := mp("ip_vs"); lerr != nil {
			code := protocol.CodeIPVSUnavail
			if errors.Is(lerr, os.ErrDeadlineExceeded) {
				code = protocol.CodeTimeout
			}
			return nil, kv, &protocol.Error{Code: code, Message: "IPVS is not available: module ip_vs could not be loaded: " + lerr.Error() + "."}
		}
		c, err = ipvs.Open(lim.call)
	}
	if errors.Is(err, ipvs.ErrNoFamily) {
		return nil, kv, &protocol.Error{Code: protocol.CodeIPVSUnavail, Message: "IPVS is not available: module ip_vs was loaded but the IPVS netlink family is still missing."}
	}
	if err != nil {
		code := protocol.CodeInternal
		if e := ipvs.Errno(err); e == 1 || e == 13 {
			code = protocol.CodePermission
		} else if errors.Is(err, os.ErrDeadlineExceeded) {
			code = protocol.CodeTimeout
		}
		return nil, kv, &protocol.Error{Code: code, Errno: int(ipvs.Errno(err)), Message: "connecting to IPVS failed: " + err.Error() + "."}
	}
	return c, kv, nil
}

func openEngine(lim limits) (*engine.Engine, *protocol.Error) {
	c, kv, perr := openKernel(lim)
	if perr != nil {
		return nil, perr
	}
	return engine.New(c, kv, modprober(lim)), nil
}

// kernelIPVSVersion is GET_INFO's version, "" when IPVS is absent (version never loads modules).
func kernelIPVSVersion(lim limits) string {
	c, err := ipvs.Open(lim.call)
	if err != nil {
		return ""
	}
	defer c.Close()
	i, err := c.Info()
	if err != nil {
		return ""
	}
	return i.VersionString()
}
