//go:build !linux

package main

import (
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/engine"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

var errNotLinux = &protocol.Error{Code: protocol.CodeIPVSUnavail, Message: "IPVS exists only on Linux; this helper was built for another system."}

func modprober(limits) engine.Modprober { return nil }

func killModprobes() {}

func openKernel(limits) (engine.Kernel, ipvs.KernelVersion, *protocol.Error) {
	return nil, ipvs.KernelVersion{}, errNotLinux
}

func openEngine(limits) (*engine.Engine, *protocol.Error) { return nil, errNotLinux }

func kernelIPVSVersion(limits) string { return "" }
