//go:build linux

package main

import (
	"errors"
	"fmt"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/engine"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/kmod"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// minKernel is the oldest kernel the helper supports.
var minKernel = ipvs.KernelVersion{Major: 4, Minor: 19}

func modprober() engine.Modprober { return kmod.Modprobe() }

// openKernel connects to IPVS, loading ip_vs once if the family is missing.
func openKernel() (*ipvs.Conn, ipvs.KernelVersion, *protocol.Error) {
	rel := ipvs.KernelRelease()
	kv := ipvs.ParseKernelRelease(rel)
	if kv.Lacks(minKernel) {
		return nil, kv, &protocol.Error{Code: protocol.CodeUnsupported, Message: fmt.Sprintf("this helper needs Linux %s or newer; this director runs %s.", minKernel, rel)}
	}
	c, err := ipvs.Open()
	if errors.Is(err, ipvs.ErrNoFamily) {
		mp := kmod.Modprobe()
		if mp == nil {
			return nil, kv, &protocol.Error{Code: protocol.CodeIPVSUnavail, Message: "IPVS is not available: the ip_vs module is not loaded and modprobe is not installed."}
		}
		if lerr := mp("ip_vs"); lerr != nil {
			return nil, kv, &protocol.Error{Code: protocol.CodeIPVSUnavail, Message: "IPVS is not available: module ip_vs could not be loaded: " + lerr.Error() + "."}
		}
		c, err = ipvs.Open()
	}
	if errors.Is(err, ipvs.ErrNoFamily) {
		return nil, kv, &protocol.Error{Code: protocol.CodeIPVSUnavail, Message: "IPVS is not available: module ip_vs was loaded but the IPVS netlink family is still missing."}
	}
	if err != nil {
		code := protocol.CodeInternal
		if e := ipvs.Errno(err); e == 1 || e == 13 {
			code = protocol.CodePermission
		}
		return nil, kv, &protocol.Error{Code: code, Errno: int(ipvs.Errno(err)), Message: "connecting to IPVS failed: " + err.Error() + "."}
	}
	return c, kv, nil
}

func openEngine() (*engine.Engine, *protocol.Error) {
	c, kv, perr := openKernel()
	if perr != nil {
		return nil, perr
	}
	return engine.New(c, kv, kmod.Modprobe()), nil
}

// kernelIPVSVersion is GET_INFO's version, "" when IPVS is absent (version never loads modules).
func kernelIPVSVersion() string {
	c, err := ipvs.Open()
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
