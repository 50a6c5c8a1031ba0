package ipvs

import (
	"net/netip"
	"testing"
)

func svc(addr string, port uint16) Service {
	a := netip.MustParseAddr(addr)
	af := AFInet
	if a.Is6() {
		af = AFInet6
	}
	return Service{ServiceKey: ServiceKey{AF: af, Protocol: ProtoTCP, Addr: a, Port: port}}
}

func TestCmpServicesWrapsLikeLibipvs(t *testing.T) {
	// ntohl(10.0.0.1) - ntohl(192.168.0.1) wraps to a positive int: libipvs puts 10.0.0.1 after 192.168.0.1.
	a, b := svc("10.0.0.1", 80), svc("192.168.0.1", 80)
	if CmpServices(&a, &b) <= 0 {
		t.Error("10.0.0.1 must sort after 192.168.0.1 as in ipvsadm")
	}
	c, d := svc("10.0.0.1", 80), svc("10.0.0.2", 80)
	if CmpServices(&c, &d) >= 0 {
		t.Error("close addresses sort ascending")
	}
	fw := Service{ServiceKey: ServiceKey{AF: AFInet, FWMark: 1}}
	if CmpServices(&a, &fw) >= 0 {
		t.Error("address services (fwmark 0) come before fwmark services")
	}
	v6 := svc("2001:db8::1", 80)
	if CmpServices(&a, &v6) >= 0 {
		t.Error("IPv4 before IPv6")
	}
}

func TestMergeSortIsGlibcMsort(t *testing.T) {
	// Replays glibc's split at n/2: with a stable comparator the result is sorted and stable.
	type kv struct{ k, i int }
	in := []kv{{3, 0}, {1, 1}, {3, 2}, {2, 3}, {1, 4}, {0, 5}, {2, 6}}
	MergeSort(in, func(a, b *kv) int { return a.k - b.k })
	want := []kv{{0, 5}, {1, 1}, {1, 4}, {2, 3}, {2, 6}, {3, 0}, {3, 2}}
	for i := range want {
		if in[i] != want[i] {
			t.Fatalf("got %v", in)
		}
	}
}
