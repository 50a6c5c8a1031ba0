package ipvs

import (
	"encoding/binary"
	"net/netip"
)

// ipvsadm sorts with glibc qsort (a top-down merge sort) and comparators that subtract unsigned 32-bit values
// into an int, which wraps: 10.0.0.1 sorts after 192.168.0.1. The order is not even transitive, so matching
// `ipvsadm -Sn` byte for byte means replaying the same merge sort on the same (kernel dump) order.

func diff32(a, b uint32) int { return int(int32(a - b)) }

func words(a [16]byte, i int) uint32 { return binary.BigEndian.Uint32(a[i*4:]) }

// addr16 is the kernel's nf_inet_addr: an IPv4 address fills the first word, the rest is zero.
func addr16(a netip.Addr) [16]byte {
	var r [16]byte
	if !a.IsValid() {
		return r
	}
	if a.Is4() {
		b := a.As4()
		copy(r[:], b[:])
		return r
	}
	return a.As16()
}

func cmpAddr(af uint16, a, b [16]byte) int {
	if af == AFInet6 {
		for i := 0; i < 4; i++ {
			if r := diff32(words(a, i), words(b, i)); r != 0 {
				return r
			}
		}
		return 0
	}
	return diff32(words(a, 0), words(b, 0))
}

// CmpServices is libipvs's ipvs_cmp_services.
func CmpServices(a, b *Service) int {
	if r := diff32(a.FWMark, b.FWMark); r != 0 {
		return r
	}
	if r := int(a.AF) - int(b.AF); r != 0 {
		return r
	}
	if r := int(a.Protocol) - int(b.Protocol); r != 0 {
		return r
	}
	if r := cmpAddr(a.AF, addr16(a.Addr), addr16(b.Addr)); r != 0 {
		return r
	}
	return int(a.Port) - int(b.Port)
}

// CmpDests is libipvs's ipvs_cmp_dests (the first dest's family decides how many words are compared).
func CmpDests(a, b *Dest) int {
	if r := cmpAddr(a.AF, addr16(a.Addr), addr16(b.Addr)); r != 0 {
		return r
	}
	return int(a.Port) - int(b.Port)
}

// MergeSort is glibc's msort_with_tmp: split at n/2, sort halves, merge taking the left element while cmp <= 0.
func MergeSort[T any](s []T, cmp func(a, b *T) int) {
	if len(s) < 2 {
		return
	}
	tmp := make([]T, len(s))
	msort(s, tmp, cmp)
}

func msort[T any](b, tmp []T, cmp func(a, b *T) int) {
	n := len(b)
	if n <= 1 {
		return
	}
	n1 := n / 2
	b1, b2 := b[:n1], b[n1:]
	msort(b1, tmp, cmp)
	msort(b2, tmp, cmp)
	i, j, k := 0, 0, 0
	for i < len(b1) && j < len(b2) {
		if cmp(&b1[i], &b2[j]) <= 0 {
			tmp[k] = b1[i]
			i++
		} else {
			tmp[k] = b2[j]
			j++
		}
		k++
	}
	// glibc copies the rest of the left run; the right run's rest is already in place.
	k += copy(tmp[k:], b1[i:])
	copy(b, tmp[:k])
}
