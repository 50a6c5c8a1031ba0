package ipvs

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/mdlayher/netlink"
)

// Generic netlink commands of the IPVS family.
const (
	CmdNewService = 1
	CmdSetService = 2
	CmdDelService = 3
	CmdGetService = 4
	CmdNewDest    = 5
	CmdSetDest    = 6
	CmdDelDest    = 7
	CmdGetDest    = 8
	CmdNewDaemon  = 9
	CmdDelDaemon  = 10
	CmdGetDaemon  = 11
	CmdSetConfig  = 12
	CmdGetConfig  = 13
	CmdGetInfo    = 15
	CmdZero       = 16
	CmdFlush      = 17
)

// Top-level attributes.
const (
	attrService    = 1
	attrDest       = 2
	attrDaemon     = 3
	attrTimeoutTCP = 4
	attrTimeoutFin = 5
	attrTimeoutUDP = 6
)

const (
	svcAF = iota + 1
	svcProtocol
	svcAddr
	svcPort
	svcFWMark
	svcSchedName
	svcFlags
	svcTimeout
	svcNetmask
	svcStats
	svcPEName
	svcStats64
)

const (
	destAddr = iota + 1
	destPort
	destFwd
	destWeight
	destUThresh
	destLThresh
	destActive
	destInact
	destPersist
	destStats
	destAF
	destStats64
	destTunType
	destTunPort
	destTunFlags
)

const (
	daemonState = iota + 1
	daemonIfn
	daemonSyncID
	daemonMaxLen
	daemonGroup
	daemonGroup6
	daemonPort
	daemonTTL
)

const (
	infoVersion = 1
	infoConnTab = 2
)

const (
	statConns = iota + 1
	statInPkts
	statOutPkts
	statInBytes
	statOutBytes
	statCPS
	statInPPS
	statOutPPS
	statInBPS
	statOutBPS
)

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

func addrBytes(a netip.Addr) []byte {
	if a.Is4() {
		b := a.As4()
		return b[:]
	}
	b := a.As16()
	return b[:]
}

// decodeAddr reads a kernel address: replies always carry 16 bytes, the family says how many matter.
func decodeAddr(b []byte, af uint16) (netip.Addr, error) {
	switch {
	case af == AFInet && len(b) >= 4:
		return netip.AddrFrom4([4]byte(b[:4])), nil
	case af == AFInet6 && len(b) >= 16:
		return netip.AddrFrom16([16]byte(b[:16])), nil
	}
	return netip.Addr{}, fmt.Errorf("address of %d bytes for family %d", len(b), af)
}

func encodeServiceKey(ae *netlink.AttributeEncoder, k ServiceKey) {
	ae.Uint16(svcAF, k.AF)
	if k.IsFWMark() {
		ae.Uint32(svcFWMark, k.FWMark)
		return
	}
	ae.Uint16(svcProtocol, k.Protocol)
	ae.Bytes(svcAddr, addrBytes(k.Addr))
	ae.Bytes(svcPort, be16(k.Port))
}

func encodeNetmask(af uint16, mask uint32) []byte {
	if af == AFInet {
		return binary.BigEndian.AppendUint32(nil, mask)
	}
	return binary.NativeEndian.AppendUint32(nil, mask)
}

// EncodeServiceKeyOnly is the payload of DEL_SERVICE, GET_SERVICE, GET_DEST and ZERO.
func EncodeServiceKeyOnly(k ServiceKey) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	ae.Nested(attrService, func(n *netlink.AttributeEncoder) error {
		encodeServiceKey(n, k)
		return nil
	})
	return ae.Encode()
}

// EncodeService is the payload of NEW/SET_SERVICE: the complete entry, since a SET resets what it omits.
func EncodeService(s Service) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	ae.Nested(attrService, func(n *netlink.AttributeEncoder) error {
		encodeServiceKey(n, s.ServiceKey)
		n.String(svcSchedName, s.Sched)
		flags := binary.NativeEndian.AppendUint32(nil, s.Flags&^FlagHashed)
		flags = binary.NativeEndian.AppendUint32(flags, 0xffffffff)
		n.Bytes(svcFlags, flags)
		n.Uint32(svcTimeout, s.Timeout)
		n.Bytes(svcNetmask, encodeNetmask(s.AF, s.Netmask))
		if s.PE != "" {
			n.String(svcPEName, s.PE)
		}
		return nil
	})
	return ae.Encode()
}

func encodeDestKey(n *netlink.AttributeEncoder, d DestKey) {
	n.Bytes(destAddr, addrBytes(d.Addr))
	n.Bytes(destPort, be16(d.Port))
	n.Uint16(destAF, d.AF)
}

// EncodeDest is the payload of NEW/SET_DEST: service identity plus the complete dest (a SET without TUN_* resets the tunnel).
func EncodeDest(k ServiceKey, d Dest) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	ae.Nested(attrService, func(n *netlink.AttributeEncoder) error {
		encodeServiceKey(n, k)
		return nil
	})
	ae.Nested(attrDest, func(n *netlink.AttributeEncoder) error {
		encodeDestKey(n, d.DestKey)
		n.Uint32(destFwd, d.Fwd&FwdMask)
		n.Uint32(destWeight, d.Weight)
		n.Uint32(destUThresh, d.UThresh)
		n.Uint32(destLThresh, d.LThresh)
		if d.Fwd&FwdMask == FwdTunnel {
			n.Uint8(destTunType, d.TunType)
			n.Bytes(destTunPort, be16(d.TunPort))
			n.Uint16(destTunFlags, d.TunFlags)
		}
		return nil
	})
	return ae.Encode()
}

// EncodeDestKeyOnly is the payload of DEL_DEST.
func EncodeDestKeyOnly(k ServiceKey, d DestKey) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	ae.Nested(attrService, func(n *netlink.AttributeEncoder) error {
		encodeServiceKey(n, k)
		return nil
	})
	ae.Nested(attrDest, func(n *netlink.AttributeEncoder) error {
		encodeDestKey(n, d)
		return nil
	})
	return ae.Encode()
}

// EncodeDaemon is the payload of NEW_DAEMON (full) and DEL_DAEMON (state only).
func EncodeDaemon(d Daemon, stateOnly bool) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	ae.Nested(attrDaemon, func(n *netlink.AttributeEncoder) error {
		n.Uint32(daemonState, d.State)
		if stateOnly {
			return nil
		}
		n.String(daemonIfn, d.Interface)
		n.Uint32(daemonSyncID, d.SyncID)
		if d.MaxLen != 0 {
			n.Uint16(daemonMaxLen, d.MaxLen)
		}
		if d.Group.Is4() {
			n.Bytes(daemonGroup, addrBytes(d.Group))
		} else if d.Group.Is6() {
			n.Bytes(daemonGroup6, addrBytes(d.Group))
		}
		if d.Port != 0 {
			n.Uint16(daemonPort, d.Port) // host order, unlike every other port
		}
		if d.TTL != 0 {
			n.Uint8(daemonTTL, d.TTL)
		}
		return nil
	})
	return ae.Encode()
}

// EncodeTimeouts is the payload of SET_CONFIG; zero fields are left out so the kernel keeps them.
func EncodeTimeouts(t Timeouts) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	if t.TCP != 0 {
		ae.Uint32(attrTimeoutTCP, t.TCP)
	}
	if t.TCPFin != 0 {
		ae.Uint32(attrTimeoutFin, t.TCPFin)
	}
	if t.UDP != 0 {
		ae.Uint32(attrTimeoutUDP, t.UDP)
	}
	return ae.Encode()
}

// nested runs fn on the first top-level attribute of type typ.
func nested(b []byte, typ uint16, what string, fn func(*netlink.AttributeDecoder) error) error {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return err
	}
	found := false
	for ad.Next() {
		if ad.Type() == typ && !found {
			found = true
			ad.Nested(fn)
		}
	}
	if err := ad.Err(); err != nil {
		return fmt.Errorf("decoding %s: %w", what, err)
	}
	if !found {
		return fmt.Errorf("reply carries no %s attribute", what)
	}
	return nil
}

// decodeStats reads STATS (u32 counters, u64 bytes) or STATS64 (all u64): the payload size tells which.
func decodeStats(ad *netlink.AttributeDecoder, st *Stats) error {
	num := func() uint64 {
		b := ad.Bytes()
		switch len(b) {
		case 8:
			return binary.NativeEndian.Uint64(b)
		case 4:
			return uint64(binary.NativeEndian.Uint32(b))
		}
		return 0
	}
	for ad.Next() {
		switch ad.Type() {
		case statConns:
			st.Conns = num()
		case statInPkts:
			st.InPkts = num()
		case statOutPkts:
			st.OutPkts = num()
		case statInBytes:
			st.InBytes = num()
		case statOutBytes:
			st.OutBytes = num()
		case statCPS:
			st.CPS = num()
		case statInPPS:
			st.InPPS = num()
		case statOutPPS:
			st.OutPPS = num()
		case statInBPS:
			st.InBPS = num()
		case statOutBPS:
			st.OutBPS = num()
		}
	}
	return nil
}

// DecodeService reads a service from a NEW_SERVICE reply payload. STATS64 wins over the 32-bit STATS.
func DecodeService(b []byte) (Service, error) {
	var s Service
	var addr, port, netmask []byte
	have64 := false
	err := nested(b, attrService, "service", func(ad *netlink.AttributeDecoder) error {
		for ad.Next() {
			switch ad.Type() {
			case svcAF:
				s.AF = ad.Uint16()
			case svcProtocol:
				s.Protocol = ad.Uint16()
			case svcAddr:
				addr = ad.Bytes()
			case svcPort:
				port = ad.Bytes()
			case svcFWMark:
				s.FWMark = ad.Uint32()
			case svcSchedName:
				s.Sched = ad.String()
			case svcFlags:
				if f := ad.Bytes(); len(f) >= 4 {
					s.Flags = binary.NativeEndian.Uint32(f) &^ FlagHashed
				}
			case svcTimeout:
				s.Timeout = ad.Uint32()
			case svcNetmask:
				netmask = ad.Bytes()
			case svcPEName:
				s.PE = ad.String()
			case svcStats:
				if !have64 {
					ad.Nested(func(n *netlink.AttributeDecoder) error { return decodeStats(n, &s.Stats) })
				}
			case svcStats64:
				have64 = true
				s.Stats = Stats{}
				ad.Nested(func(n *netlink.AttributeDecoder) error { return decodeStats(n, &s.Stats) })
			}
		}
		return nil
	})
	if err != nil {
		return s, err
	}
	if s.AF != AFInet && s.AF != AFInet6 {
		return s, fmt.Errorf("service of unknown address family %d", s.AF)
	}
	if len(netmask) == 4 {
		if s.AF == AFInet {
			s.Netmask = binary.BigEndian.Uint32(netmask)
		} else {
			s.Netmask = binary.NativeEndian.Uint32(netmask)
		}
	}
	if s.FWMark == 0 {
		if s.Addr, err = decodeAddr(addr, s.AF); err != nil {
			return s, fmt.Errorf("service address: %w", err)
		}
		if len(port) != 2 {
			return s, fmt.Errorf("service port of %d bytes", len(port))
		}
		s.Port = binary.BigEndian.Uint16(port)
	} else {
		s.Protocol = 0 // the kernel reports fwmark services with a protocol; identity ignores it
	}
	return s, nil
}

// DecodeDest reads a dest from a NEW_DEST reply payload. svcAF is used when the kernel sends no ADDR_FAMILY.
func DecodeDest(b []byte, svcAF uint16) (Dest, error) {
	var d Dest
	var addr, port, tport []byte
	have64 := false
	err := nested(b, attrDest, "dest", func(ad *netlink.AttributeDecoder) error {
		for ad.Next() {
			switch ad.Type() {
			case destAddr:
				addr = ad.Bytes()
			case destPort:
				port = ad.Bytes()
			case destFwd:
				d.Fwd = ad.Uint32() & FwdMask
			case destWeight:
				d.Weight = ad.Uint32()
			case destUThresh:
				d.UThresh = ad.Uint32()
			case destLThresh:
				d.LThresh = ad.Uint32()
			case destActive:
				d.ActiveConns = ad.Uint32()
			case destInact:
				d.InactConns = ad.Uint32()
			case destPersist:
				d.PersistConns = ad.Uint32()
			case destAF:
				d.AF = ad.Uint16()
			case destStats:
				if !have64 {
					ad.Nested(func(n *netlink.AttributeDecoder) error { return decodeStats(n, &d.Stats) })
				}
			case destStats64:
				have64 = true
				d.Stats = Stats{}
				ad.Nested(func(n *netlink.AttributeDecoder) error { return decodeStats(n, &d.Stats) })
			case destTunType:
				d.TunType = ad.Uint8()
			case destTunPort:
				tport = ad.Bytes()
			case destTunFlags:
				d.TunFlags = ad.Uint16()
			}
		}
		return nil
	})
	if err != nil {
		return d, err
	}
	if d.AF == 0 {
		d.AF = svcAF
	}
	if d.Addr, err = decodeAddr(addr, d.AF); err != nil {
		return d, fmt.Errorf("dest address: %w", err)
	}
	if len(port) != 2 {
		return d, fmt.Errorf("dest port of %d bytes", len(port))
	}
	d.Port = binary.BigEndian.Uint16(port)
	if len(tport) == 2 {
		d.TunPort = binary.BigEndian.Uint16(tport)
	}
	return d, nil
}

// DecodeDaemon reads one GET_DAEMON reply.
func DecodeDaemon(b []byte) (Daemon, error) {
	var d Daemon
	err := nested(b, attrDaemon, "daemon", func(ad *netlink.AttributeDecoder) error {
		for ad.Next() {
			switch ad.Type() {
			case daemonState:
				d.State = ad.Uint32()
			case daemonIfn:
				d.Interface = ad.String()
			case daemonSyncID:
				d.SyncID = ad.Uint32()
			case daemonMaxLen:
				d.MaxLen = ad.Uint16()
			case daemonGroup:
				if g := ad.Bytes(); len(g) == 4 {
					d.Group = netip.AddrFrom4([4]byte(g))
				}
			case daemonGroup6:
				if g := ad.Bytes(); len(g) == 16 && !d.Group.Is4() {
					d.Group = netip.AddrFrom16([16]byte(g))
				}
			case daemonPort:
				d.Port = ad.Uint16()
			case daemonTTL:
				d.TTL = ad.Uint8()
			}
		}
		return nil
	})
	return d, err
}

// DecodeTimeouts reads a GET_CONFIG reply.
func DecodeTimeouts(b []byte) (Timeouts, error) {
	var t Timeouts
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return t, err
	}
	for ad.Next() {
		switch ad.Type() {
		case attrTimeoutTCP:
			t.TCP = ad.Uint32()
		case attrTimeoutFin:
			t.TCPFin = ad.Uint32()
		case attrTimeoutUDP:
			t.UDP = ad.Uint32()
		}
	}
	return t, ad.Err()
}

// DecodeInfo reads a GET_INFO reply.
func DecodeInfo(b []byte) (Info, error) {
	var i Info
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return i, err
	}
	for ad.Next() {
		switch ad.Type() {
		case infoVersion:
			i.Version = ad.Uint32()
		case infoConnTab:
			i.ConnTabSize = ad.Uint32()
		}
	}
	return i, ad.Err()
}
