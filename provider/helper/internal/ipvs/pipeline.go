package ipvs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
)

// Write is one IPVS command that answers with an ACK only (NEW/SET/DEL of services and dests). Many writes can be
// sent in one sendmsg (Conn.Pipeline); the kernel runs them in order and ACKs each under its own sequence number.
type Write struct {
	Cmd     uint8
	Payload []byte // attributes, without the generic netlink header
}

// NewServiceWrite, SetServiceWrite, DelServiceWrite, NewDestWrite, SetDestWrite and DelDestWrite encode one write.
func NewServiceWrite(s Service) (Write, error) { return writeOf(CmdNewService)(EncodeService(s)) }
func SetServiceWrite(s Service) (Write, error) { return writeOf(CmdSetService)(EncodeService(s)) }
func DelServiceWrite(k ServiceKey) (Write, error) {
	return writeOf(CmdDelService)(EncodeServiceKeyOnly(k))
}
func NewDestWrite(k ServiceKey, d Dest) (Write, error) { return writeOf(CmdNewDest)(EncodeDest(k, d)) }
func SetDestWrite(k ServiceKey, d Dest) (Write, error) { return writeOf(CmdSetDest)(EncodeDest(k, d)) }
func DelDestWrite(k ServiceKey, d DestKey) (Write, error) {
	return writeOf(CmdDelDest)(EncodeDestKeyOnly(k, d))
}

func writeOf(cmd uint8) func([]byte, error) (Write, error) {
	return func(payload []byte, err error) (Write, error) { return Write{Cmd: cmd, Payload: payload}, err }
}

const (
	nlmsgHdrLen  = 16 // struct nlmsghdr
	genlHdrLen   = 4  // struct genlmsghdr
	nlmsgError   = 2  // NLMSG_ERROR
	nlmFRequest  = 0x1
	nlmFAck      = 0x4
	genlVersion  = 1
	ackTruesize  = 2048 // what one queued ACK may cost in the receive buffer (skb overhead, echoed request on errors)
	minChunkMsgs = 16
)

// Pipeline limits: a chunk is one sendmsg. Its ACKs are all queued before sendmsg returns (the kernel processes
// netlink requests in the sender's context) and an ACK that does not fit the receive buffer is dropped, so a chunk
// is bounded by the receive buffer; its size by the send buffer (default 208 KiB, EMSGSIZE above).
const (
	MaxChunkMsgs  = 256
	MaxChunkBytes = 64 << 10
)

// ErrAckLost is the error of a write whose ACK never arrived (receive buffer overrun): the kernel may or may not
// have applied it.
var ErrAckLost = errors.New("the kernel's answer was lost (netlink receive buffer overrun); the change may or may not have been applied")

func align4(n int) int { return (n + 3) &^ 3 }

func (w Write) wireLen() int { return align4(nlmsgHdrLen + genlHdrLen + len(w.Payload)) }

// ChunkMsgs is how many writes one sendmsg may carry when the socket's receive buffer is rcvbuf bytes.
func ChunkMsgs(rcvbuf int) int {
	return max(minChunkMsgs, min(MaxChunkMsgs, rcvbuf/ackTruesize))
}

// chunkRanges splits ws into consecutive [lo, hi) ranges of at most maxMsgs writes and maxBytes bytes on the wire
// (a single larger write still gets a range of its own), keeping their order.
func chunkRanges(ws []Write, maxMsgs, maxBytes int) [][2]int {
	var out [][2]int
	lo, bytes := 0, 0
	for i, w := range ws {
		n := w.wireLen()
		if i > lo && (i-lo >= maxMsgs || bytes+n > maxBytes) {
			out = append(out, [2]int{lo, i})
			lo, bytes = i, 0
		}
		bytes += n
	}
	if lo < len(ws) {
		out = append(out, [2]int{lo, len(ws)})
	}
	return out
}

// encodeChunk lays out ws as consecutive netlink messages for family, numbered seq, seq+1, ... and each asking for an ACK.
func encodeChunk(family uint16, seq uint32, ws []Write) []byte {
	size := 0
	for _, w := range ws {
		size += w.wireLen()
	}
	b := make([]byte, 0, size)
	for i, w := range ws {
		start := len(b)
		b = binary.NativeEndian.AppendUint32(b, uint32(nlmsgHdrLen+genlHdrLen+len(w.Payload)))
		b = binary.NativeEndian.AppendUint16(b, family)
		b = binary.NativeEndian.AppendUint16(b, nlmFRequest|nlmFAck)
		b = binary.NativeEndian.AppendUint32(b, seq+uint32(i))
		b = binary.NativeEndian.AppendUint32(b, 0) // port id: the kernel answers the sending socket regardless
		b = append(b, w.Cmd, genlVersion, 0, 0)
		b = append(b, w.Payload...)
		for len(b)-start < w.wireLen() {
			b = append(b, 0)
		}
	}
	return b
}

// acks matches the ACKs of one chunk to its writes by sequence number: write i was sent as base+i.
type acks struct {
	base uint32
	errs []error
	seen []bool
	left int
}

func newAcks(base uint32, n int) *acks {
	return &acks{base: base, errs: make([]error, n), seen: make([]bool, n), left: n}
}

// record reads one received datagram. ACKs of other sequence numbers (a stale answer) and messages that are not
// ACKs are ignored; a duplicate ACK does not count twice. A malformed datagram is an error.
func (a *acks) record(dgram []byte) error {
	for len(dgram) > 0 {
		if len(dgram) < nlmsgHdrLen {
			return fmt.Errorf("truncated netlink message header (%d bytes)", len(dgram))
		}
		l := int(binary.NativeEndian.Uint32(dgram[0:4]))
		if l < nlmsgHdrLen || l > len(dgram) {
			return fmt.Errorf("netlink message length %d out of bounds (%d bytes left)", l, len(dgram))
		}
		typ := binary.NativeEndian.Uint16(dgram[4:6])
		seq := binary.NativeEndian.Uint32(dgram[8:12])
		body := dgram[nlmsgHdrLen:l]
		dgram = dgram[min(align4(l), len(dgram)):]
		i := seq - a.base // wraps: sequence numbers may cross 2^32 within a chunk
		if typ != nlmsgError || i >= uint32(len(a.errs)) || a.seen[i] {
			continue
		}
		if len(body) < 4 {
			return fmt.Errorf("truncated netlink ACK for sequence %d", seq)
		}
		a.seen[i] = true
		a.left--
		if code := int32(binary.NativeEndian.Uint32(body[:4])); code != 0 {
			a.errs[i] = syscall.Errno(-code)
		}
	}
	return nil
}

// fail gives err to every write whose ACK has not arrived.
func (a *acks) fail(err error) {
	for i, ok := range a.seen {
		if !ok {
			a.errs[i] = err
			a.seen[i] = true
		}
	}
	a.left = 0
}
