package ledger

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// The stack file format: one JSON object holding the stack's records one per line, then its change lines
// (changelines.go). What a file holds, its versions, and how it is encoded and decoded are here; reading and
// writing the files is disk.go's.
//
// The ledger's word for what it keeps is "record" (ServiceRecord, DestRecord, SettingsRecord; HostRecord in
// hosts.go). A record holds its entry's identity and settings in the protocol's read-back shape (ServiceSpecOut,
// DestSpecOut, as PROTOCOL.md's file format says) on purpose: boot replays each record as the ensure op that made
// it, so one shape serves both and cannot drift from the other.

// FileVersion is the stack file format's version: 2 added change lines after the records (changelines.go); 3 added
// record fields an older reader does not know (a service's bindAddress and health, a real server's health, the
// settings' ftp and healthMetricsDirectory). Versions 1 and 2 are read too, and a file of either is rewritten whole as
// the current version on its first change, so no newer field is ever written under an older version number. A file
// of a later version is refused as written by a newer pulumi-ipvs (decodeFile), whatever fields it holds.
const FileVersion = 3

// file is one stack's record on disk.
type file struct {
	V        int             `json:"v"`
	Owner    string          `json:"owner"`
	Services []ServiceRecord `json:"services"`
	Dests    []DestRecord    `json:"dests"`
	Settings *SettingsRecord `json:"settings"`
}

// ServiceRecord is a recorded service: its identity and settings, and its health settings.
type ServiceRecord struct {
	Service protocol.ServiceSpecOut `json:"service"`
	// Health is the service's minHealthy and sorry server (issue 27), absent when it has neither.
	Health *protocol.ServiceHealth `json:"health,omitempty"`
}

// DestRecord is a recorded real server and the identity of its service.
type DestRecord struct {
	Service protocol.ServiceKeyOut `json:"service"`
	Dest    protocol.DestSpecOut   `json:"dest"`
	// Holder is the resource of the owning stack that holds the real server (a URN), "" when the ops gave none.
	Holder string `json:"holder,omitempty"`
	// HealthCheck is the check the owning stack declared for it (issue 27), absent when none: the checker's
	// configuration, and Dest's weight is the declared one it restores.
	HealthCheck *protocol.HealthCheck `json:"healthCheck,omitempty"`
}

// SettingsRecord is a stack's recorded director settings: what it applied, and the values found before it first set
// each item. Both are protocol Settings objects, kept as JSON: the engine decodes them.
type SettingsRecord struct {
	Applied  json.RawMessage `json:"applied"`
	Original json.RawMessage `json:"original"`
}

// Record is the stack's record as its file holds it (for `ipvs-helper owners --json`).
func (s *Stack) Record() any {
	f := file{V: FileVersion, Owner: s.Owner, Services: []ServiceRecord{}, Dests: s.DestList(), Settings: s.Settings}
	for _, ln := range s.svcLines.order {
		f.Services = append(f.Services, ServiceRecord{Service: s.Services[ln.key], Health: s.Health[ln.key]})
	}
	return f
}

// encode appends a stack file to b: compact JSON with one record per line, concatenated from the records' lines.
func (s *Stack) encode(b []byte) []byte {
	owner, settings := mustJSON(s.Owner), mustJSON(s.Settings)
	b = slices.Grow(b, len(owner)+len(settings)+s.svcLines.size()+s.destLines.size()+64)
	b = fmt.Appendf(b, `{"v":%d,"owner":%s,`+"\n"+`"services":`, FileVersion, owner)
	b = append(s.svcLines.appendTo(b), ",\n"+`"dests":`...)
	b = append(s.destLines.appendTo(b), ",\n"+`"settings":`...)
	return append(append(b, settings...), "}\n"...)
}

// decodeFile makes a stack of a stack file's content (raw, read from path): its records, then its change lines.
func decodeFile(path string, raw []byte) (*Stack, error) {
	var f file
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	if err := d.Decode(&f); err != nil {
		// A newer version's file may hold fields this helper does not know: say that it is newer, not that a
		// field is unknown. Read the version only now, so a good file is parsed once.
		var v struct {
			V int `json:"v"`
		}
		if json.NewDecoder(bytes.NewReader(raw)).Decode(&v) == nil && v.V > FileVersion {
			return nil, newerFile(path, v.V)
		}
		return nil, fmt.Errorf("the ledger file %s is not a valid stack record: %v", path, err)
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("the ledger file %s is not a valid stack record: %s", path, fmt.Sprintf(format, a...))
	}
	if f.V > FileVersion {
		return nil, newerFile(path, f.V)
	}
	if f.V < 1 {
		return nil, bad("version %d (this helper reads versions 1 to %d)", f.V, FileVersion)
	}
	if e := protocol.CheckOwner(f.Owner, "owner"); e != nil {
		return nil, bad("%s", e.Message)
	}
	if filepath.Base(path) != FileName(f.Owner) {
		return nil, bad("it holds stack %s, whose file is %s", f.Owner, FileName(f.Owner))
	}
	s := newStack(f.Owner)
	s.Settings = f.Settings
	for _, r := range f.Services {
		key, e := serviceKey(r.Service.ServiceKeyOut)
		if e != nil {
			return nil, bad("%s", e.Message)
		}
		s.Services[key] = r.Service
		if r.Health != nil {
			s.Health[key] = r.Health
		}
		s.svcLines.load(key)
	}
	// Each distinct service is decoded once, not once per real server.
	svcKeys := map[svcIdentity]ipvs.ServiceKey{}
	for _, r := range f.Dests {
		svc, seen := svcKeys[identityOf(r.Service)]
		if !seen {
			var e *protocol.Error
			if svc, e = serviceKey(r.Service); e != nil {
				return nil, bad("%s", e.Message)
			}
			svcKeys[identityOf(r.Service)] = svc
		}
		dest, e := protocol.DestKeyOf(r.Dest.Address, r.Dest.Port)
		if e != nil {
			return nil, bad("%s", e.Message)
		}
		id := DestID{svc, dest}
		s.Dests[id] = r
		s.destLines.load(id)
	}
	// The change lines: everything after the last newline is an unfinished one (see changelines.go).
	s.snap = int(d.InputOffset())
	if s.snap < len(raw) && raw[s.snap] == '\n' {
		s.snap++
	}
	rest := raw[s.snap:]
	lines := rest[:bytes.LastIndexByte(rest, '\n')+1]
	jd := json.NewDecoder(bytes.NewReader(lines))
	jd.DisallowUnknownFields()
	if err := s.replay(jd, svcKeys, bad); err != nil {
		return nil, err
	}
	s.changeBytes, s.rewrite = len(lines), len(bytes.TrimSpace(rest[len(lines):])) > 0 || f.V != FileVersion
	s.changed = changes{} // the drops replayed are on disk already
	return s, nil
}

// newerFile is the refusal of a stack file of a later version than this helper's: every helper sharing a director
// must read what the newest one writes.
func newerFile(path string, v int) error {
	return fmt.Errorf("the ledger file %s was written by a newer version of pulumi-ipvs (file version %d; this helper reads versions 1 to %d): upgrade pulumi-ipvs in every stack that shares this director", path, v, FileVersion)
}

// serviceKey decodes a recorded identity with the protocol's own checks.
func serviceKey(k protocol.ServiceKeyOut) (ipvs.ServiceKey, *protocol.Error) {
	op, e := protocol.DecodeOp(mustJSON(map[string]any{"op": "deleteService", "service": k}))
	if e != nil {
		return ipvs.ServiceKey{}, e
	}
	return op.Service, nil
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain structs and maps are marshalled here
	}
	return b
}

// svcIdentity is a recorded service identity as a map key (ServiceKeyOut holds a pointer).
type svcIdentity struct {
	family, protocol, address string
	port                      uint16
	hasPort                   bool
	fwmark                    uint32
}

func identityOf(k protocol.ServiceKeyOut) svcIdentity {
	id := svcIdentity{family: k.Family, protocol: k.Protocol, address: k.Address, fwmark: k.FWMark}
	if k.Port != nil {
		id.port, id.hasPort = *k.Port, true
	}
	return id
}
