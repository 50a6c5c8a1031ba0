package ledger

import (
	"path/filepath"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// A Stack is one stack's records in memory, each kind in ipvsadm's order with its line in the file (lines.go).

// DestID names a real server within its service.
type DestID struct {
	Svc  ipvs.ServiceKey
	Dest ipvs.DestKey
}

// Stack is one stack's record. Its maps are read-only outside this package: the Ledger keeps the encodings and
// the order below in step with them.
type Stack struct {
	Owner    string
	Path     string
	Services map[ipvs.ServiceKey]protocol.ServiceSpecOut
	// Health holds the services' health settings (only services that have some).
	Health   map[ipvs.ServiceKey]*protocol.ServiceHealth
	Dests    map[DestID]DestRecord
	Settings *SettingsRecord

	// The records' lines in the file, so that saving a stack re-encodes only what a request changed.
	svcLines  lines[ipvs.ServiceKey]
	destLines lines[DestID]
	// disk is the identity of the file as this process last read or wrote it; zero when unknown.
	disk fileID
	// snap and changeBytes are the sizes of the file's snapshot and of the change lines after it. rewrite: the next
	// save must write the file whole, because it ends with an unfinished change line or is version 1 (which older
	// helpers would read without any change lines). changed is what to save.
	snap, changeBytes int
	rewrite           bool
	changed           changes
}

func newStack(owner string) *Stack {
	s := &Stack{Owner: owner, Path: filepath.Join(stacksDir(), FileName(owner)),
		Services: map[ipvs.ServiceKey]protocol.ServiceSpecOut{}, Health: map[ipvs.ServiceKey]*protocol.ServiceHealth{},
		Dests: map[DestID]DestRecord{}}
	s.svcLines = lines[ipvs.ServiceKey]{byKey: map[ipvs.ServiceKey]*line[ipvs.ServiceKey]{}, cmp: cmpKeys,
		render: func(k ipvs.ServiceKey) []byte {
			return mustJSON(ServiceRecord{Service: s.Services[k], Health: s.Health[k]})
		}}
	s.destLines = lines[DestID]{byKey: map[DestID]*line[DestID]{}, cmp: cmpDestIDs,
		render: func(id DestID) []byte { return mustJSON(s.Dests[id]) }}
	return s
}

func (s *Stack) empty() bool { return len(s.Services) == 0 && len(s.Dests) == 0 && s.Settings == nil }

func (s *Stack) dropService(k ipvs.ServiceKey) {
	if _, ok := s.Services[k]; ok {
		delete(s.Services, k)
		delete(s.Health, k)
		s.svcLines.drop(func(x ipvs.ServiceKey) bool { return x == k })
		s.changed.service(k)
	}
}

// dropDests forgets the real servers that match.
func (s *Stack) dropDests(match func(DestID) bool) {
	s.destLines.drop(func(id DestID) bool {
		if match(id) {
			delete(s.Dests, id)
			s.changed.dest(id)
			return true
		}
		return false
	})
}

// ServiceList is the stack's services in ipvsadm's order.
func (s *Stack) ServiceList() []protocol.ServiceSpecOut {
	out := make([]protocol.ServiceSpecOut, len(s.svcLines.order))
	for i, ln := range s.svcLines.order {
		out[i] = s.Services[ln.key]
	}
	return out
}

// DestList is the stack's real servers in ipvsadm's order.
func (s *Stack) DestList() []DestRecord {
	out := make([]DestRecord, len(s.destLines.order))
	for i, ln := range s.destLines.order {
		out[i] = s.Dests[ln.key]
	}
	return out
}

// cmpKeys is ipvsadm's order of services.
func cmpKeys(a, b ipvs.ServiceKey) int {
	x, y := ipvs.Service{ServiceKey: a}, ipvs.Service{ServiceKey: b}
	return ipvs.CmpServices(&x, &y)
}

// cmpDestIDs is ipvsadm's order of real servers: by service, then by real server.
func cmpDestIDs(a, b DestID) int {
	if c := cmpKeys(a.Svc, b.Svc); c != 0 {
		return c
	}
	x, y := ipvs.Dest{DestKey: a.Dest}, ipvs.Dest{DestKey: b.Dest}
	return ipvs.CmpDests(&x, &y)
}
