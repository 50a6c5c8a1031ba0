package ipvs

import (
	"encoding/binary"
	"errors"
	"math"
	"syscall"
	"testing"
)

func writes(sizes ...int) []Write {
	ws := make([]Write, len(sizes))
	for i, n := range sizes {
		ws[i] = Write{Cmd: CmdNewDest, Payload: make([]byte, n)}
	}
	return ws
}

func TestChunkRangesBoundsMessagesAndBytes(t *testing.T) {
	// 20 bytes of headers + 80 of payload = 100 bytes on the wire each.
	ws := writes(80, 80, 80, 80, 80, 80, 80)
	for _, c := range []struct {
		msgs, bytes int
		want        [][2]int
	}{
		{3, 1 << 20, [][2]int{{0, 3}, {3, 6}, {6, 7}}},
		{100, 250, [][2]int{{0, 2}, {2, 4}, {4, 6}, {6, 7}}},
		{100, 300, [][2]int{{0, 3}, {3, 6}, {6, 7}}},
		{7, 1 << 20, [][2]int{{0, 7}}},
		{1, 1, [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 6}, {6, 7}}}, // an oversized write still goes alone
	} {
		got := chunkRanges(ws, c.msgs, c.bytes)
		if len(got) != len(c.want) {
			t.Fatalf("max %d msgs/%d bytes: %v, want %v", c.msgs, c.bytes, got, c.want)
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Fatalf("max %d msgs/%d bytes: %v, want %v", c.msgs, c.bytes, got, c.want)
			}
		}
	}
	if got := chunkRanges(nil, 10, 10); len(got) != 0 {
		t.Errorf("no writes: %v", got)
	}
}

func TestChunkMsgsFollowsReceiveBuffer(t *testing.T) {
	for rcv, want := range map[int]int{0: minChunkMsgs, 212992: 104, 425984: 208, 8 << 20: MaxChunkMsgs} {
		if got := ChunkMsgs(rcv); got != want {
			t.Errorf("ChunkMsgs(%d) = %d, want %d", rcv, got, want)
		}
	}
}

func TestEncodeChunkLayout(t *testing.T) {
	ws := []Write{{Cmd: CmdNewService, Payload: []byte{1, 2, 3, 4}}, {Cmd: CmdDelDest, Payload: []byte{5, 6, 7, 8, 9, 10, 11, 12}}}
	b := encodeChunk(0x1234, math.MaxUint32, ws)
	if len(b) != 24+28 {
		t.Fatalf("length %d", len(b))
	}
	for i, off := range []int{0, 24} {
		h := b[off:]
		if l := binary.NativeEndian.Uint32(h); int(l) != 20+len(ws[i].Payload) {
			t.Errorf("msg %d nlmsg_len %d", i, l)
		}
		if typ, flags := binary.NativeEndian.Uint16(h[4:]), binary.NativeEndian.Uint16(h[6:]); typ != 0x1234 || flags != nlmFRequest|nlmFAck {
			t.Errorf("msg %d type %#x flags %#x", i, typ, flags)
		}
		if seq := binary.NativeEndian.Uint32(h[8:]); seq != math.MaxUint32+uint32(i) {
			t.Errorf("msg %d seq %d", i, seq)
		}
		if h[16] != ws[i].Cmd || h[17] != genlVersion {
			t.Errorf("msg %d genl header % x", i, h[16:20])
		}
	}
}

// ack builds an NLMSG_ERROR answer the way the kernel does: errno (negative) followed by the request's header.
func ack(seq uint32, errno syscall.Errno) []byte {
	b := binary.NativeEndian.AppendUint32(nil, 36)
	b = binary.NativeEndian.AppendUint16(b, nlmsgError)
	b = binary.NativeEndian.AppendUint16(b, 0x100) // NLM_F_CAPPED, as the kernel may set
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 4242)
	b = binary.NativeEndian.AppendUint32(b, uint32(-int32(errno)))
	return append(b, make([]byte, 16)...) // the echoed request header
}

func TestAcksMatchBySequenceNumber(t *testing.T) {
	base := uint32(math.MaxUint32 - 1) // the chunk crosses 2^32
	a := newAcks(base, 4)
	// Out of order, two in one datagram, a stale answer, a duplicate and a non-ACK message.
	stale := ack(base-1, syscall.EPERM)
	other := ack(base+2, 0)
	binary.NativeEndian.PutUint16(other[4:], 0x10) // a reply message, not an ACK
	for _, d := range [][]byte{
		ack(base+2, syscall.ESRCH),
		append(ack(base+0, 0), ack(base+1, syscall.EEXIST)...),
		stale,
		other,
		ack(base+2, 0), // duplicate: the first answer stands
	} {
		if err := a.record(d); err != nil {
			t.Fatal(err)
		}
	}
	if a.left != 1 {
		t.Fatalf("%d left, want 1", a.left)
	}
	if err := a.record(ack(base+3, syscall.ERANGE)); err != nil || a.left != 0 {
		t.Fatal(err, a.left)
	}
	want := []error{nil, syscall.EEXIST, syscall.ESRCH, syscall.ERANGE}
	for i, w := range want {
		if !errors.Is(a.errs[i], w) && a.errs[i] != w {
			t.Errorf("write %d: %v, want %v", i, a.errs[i], w)
		}
	}
	if Errno(a.errs[1]) != syscall.EEXIST {
		t.Errorf("Errno(%v) = %v", a.errs[1], Errno(a.errs[1]))
	}
}

func TestAcksPartialFailure(t *testing.T) {
	a := newAcks(10, 3)
	if err := a.record(ack(11, syscall.EINVAL)); err != nil {
		t.Fatal(err)
	}
	a.fail(ErrAckLost)
	if a.left != 0 || !errors.Is(a.errs[0], ErrAckLost) || Errno(a.errs[1]) != syscall.EINVAL || !errors.Is(a.errs[2], ErrAckLost) {
		t.Errorf("after fail: %v (left %d)", a.errs, a.left)
	}
}

func TestAcksRejectMalformed(t *testing.T) {
	for _, d := range [][]byte{{1, 2, 3}, ack(1, 0)[:20], func() []byte { b := ack(1, 0); binary.NativeEndian.PutUint32(b, 200); return b }()} {
		if err := newAcks(1, 1).record(d); err == nil {
			t.Errorf("% x accepted", d)
		}
	}
}
