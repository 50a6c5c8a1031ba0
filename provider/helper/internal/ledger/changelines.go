package ledger

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"syscall"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// A stack file is its records (the snapshot) followed by change lines: a request that changed a stack whose file
// this process knows appends one line per changed record instead of rewriting the file, so an owned op costs the
// same whatever the stack's size. A change line is a record as the snapshot holds it (the record's new value), a
// drop, or the settings:
//
//	{"service":{…}}                                   a service record
//	{"service":{…key},"dest":{…},"holder":"urn:…"}    a real server record
//	{"drop":{"service":{…key}}}                       the service record is gone
//	{"drop":{"service":{…key},"dest":{"address":…,"port":…}}}
//	{"settings":null | {"applied":…,"original":…}}
//
// Each line states its record's final value, so replaying lines over a snapshot that already holds them changes
// nothing. A last line without its newline is an append that did not finish (a crash, or a reader without the lock
// racing a writer): it was never acknowledged and is ignored; the next save rewrites that file whole.

// compactAt is the size of change lines a file may carry beyond its snapshot's own size before a save rewrites it
// whole: total bytes written stay within about twice what rewriting once would cost, and a load reads at most
// about twice the records. A variable for tests.
var compactAt = 64 << 10

// changes is what a request changed in one stack: the keys whose record is new, replaced or gone.
type changes struct {
	svcs     map[ipvs.ServiceKey]bool
	dests    map[DestID]bool
	settings bool
}

func (c *changes) service(k ipvs.ServiceKey) {
	if c.svcs == nil {
		c.svcs = map[ipvs.ServiceKey]bool{}
	}
	c.svcs[k] = true
}

func (c *changes) dest(id DestID) {
	if c.dests == nil {
		c.dests = map[DestID]bool{}
	}
	c.dests[id] = true
}

// changeLine is one change line as read back.
type changeLine struct {
	Service json.RawMessage       `json:"service"`
	Dest    *protocol.DestSpecOut `json:"dest"`
	Holder  string                `json:"holder,omitempty"`
	// HealthCheck (with a real server) and Health (with a service): issue 27's settings, as the records hold them.
	HealthCheck *protocol.HealthCheck   `json:"healthCheck,omitempty"`
	Health      *protocol.ServiceHealth `json:"health,omitempty"`
	Drop        *dropKey                `json:"drop"`
	Settings    json.RawMessage         `json:"settings"` // nil: absent; "null": the settings record is gone
}

// dropKey names the record a drop line removes.
type dropKey struct {
	Service protocol.ServiceKeyOut `json:"service"`
	Dest    *destKeyJSON           `json:"dest,omitempty"`
}

type destKeyJSON struct {
	Address string `json:"address"`
	Port    uint16 `json:"port"`
}

// appendChanges renders s's change lines: services, then real servers, then settings, each in ipvsadm's order.
func (s *Stack) appendChanges(b []byte) []byte {
	b = s.svcLines.appendChanged(b, s.changed.svcs, func(k ipvs.ServiceKey) any {
		return dropKey{Service: protocol.ServiceKeyJSON(k)}
	})
	b = s.destLines.appendChanged(b, s.changed.dests, func(id DestID) any {
		return dropKey{Service: protocol.ServiceKeyJSON(id.Svc), Dest: &destKeyJSON{Address: id.Dest.Addr.String(), Port: id.Dest.Port}}
	})
	if s.changed.settings {
		b = append(append(append(b, `{"settings":`...), mustJSON(s.Settings)...), "}\n"...)
	}
	return b
}

// appendChanged appends a line for each changed key, in order: its record's line, or a drop of it when it is gone.
func (ls *lines[K]) appendChanged(b []byte, changed map[K]bool, drop func(K) any) []byte {
	for _, k := range slices.SortedFunc(maps.Keys(changed), ls.cmp) {
		if ls.byKey[k] != nil {
			b = append(b, ls.get(k)...)
		} else {
			b = append(b, mustJSON(map[string]any{"drop": drop(k)})...)
		}
		b = append(b, '\n')
	}
	return b
}

// replay applies change lines read from s's file (the caller reindexes). svcKeys caches decoded service identities.
func (s *Stack) replay(d *json.Decoder, svcKeys map[svcIdentity]ipvs.ServiceKey, bad func(string, ...any) error) error {
	decodeKey := func(k protocol.ServiceKeyOut) (ipvs.ServiceKey, error) {
		if svc, ok := svcKeys[identityOf(k)]; ok {
			return svc, nil
		}
		svc, e := serviceKey(k)
		if e != nil {
			return ipvs.ServiceKey{}, bad("%s", e.Message)
		}
		svcKeys[identityOf(k)] = svc
		return svc, nil
	}
	for n := 1; d.More(); n++ {
		var ent changeLine
		if err := d.Decode(&ent); err != nil {
			return bad("change line %d: %v", n, err)
		}
		kind := ""
		only := func(others ...bool) bool { return !slices.Contains(others, true) }
		check, health := ent.HealthCheck != nil, ent.Health != nil
		switch {
		case ent.Drop != nil && only(ent.Service != nil, ent.Dest != nil, ent.Holder != "", ent.Settings != nil, check, health):
			kind = "drop"
		case ent.Dest != nil && ent.Service != nil && only(ent.Drop != nil, ent.Settings != nil, health):
			kind = "dest"
		case ent.Service != nil && only(ent.Drop != nil, ent.Dest != nil, ent.Holder != "", ent.Settings != nil, check):
			kind = "service"
		case ent.Settings != nil && only(ent.Drop != nil, ent.Service != nil, ent.Dest != nil, ent.Holder != "", check, health):
			kind = "settings"
		default:
			return bad("change line %d is not one of a service, a real server, a drop or the settings", n)
		}
		switch kind {
		case "settings":
			var set *SettingsRecord
			if err := json.Unmarshal(ent.Settings, &set); err != nil {
				return bad("change line %d: %v", n, err)
			}
			s.Settings = set
		case "drop":
			svc, err := decodeKey(ent.Drop.Service)
			if err != nil {
				return err
			}
			if ent.Drop.Dest == nil {
				s.dropService(svc)
				continue
			}
			dest, e := protocol.DestKeyOf(ent.Drop.Dest.Address, ent.Drop.Dest.Port)
			if e != nil {
				return bad("change line %d: %s", n, e.Message)
			}
			id := DestID{svc, dest}
			s.dropDests(func(x DestID) bool { return x == id })
		case "dest":
			var key protocol.ServiceKeyOut
			if err := strictJSON(ent.Service, &key); err != nil {
				return bad("change line %d: %v", n, err)
			}
			svc, err := decodeKey(key)
			if err != nil {
				return err
			}
			dest, e := protocol.DestKeyOf(ent.Dest.Address, ent.Dest.Port)
			if e != nil {
				return bad("change line %d: %s", n, e.Message)
			}
			id := DestID{svc, dest}
			s.Dests[id] = DestRecord{Service: key, Dest: *ent.Dest, Holder: ent.Holder, HealthCheck: ent.HealthCheck}
			s.destLines.set(id, nil)
		default: // a service
			var spec protocol.ServiceSpecOut
			if err := strictJSON(ent.Service, &spec); err != nil {
				return bad("change line %d: %v", n, err)
			}
			svc, err := decodeKey(spec.ServiceKeyOut)
			if err != nil {
				return err
			}
			s.Services[svc] = spec
			if ent.Health != nil {
				s.Health[svc] = ent.Health
			} else {
				delete(s.Health, svc)
			}
			s.svcLines.set(svc, nil)
		}
	}
	return nil
}

func strictJSON(raw []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

// canAppend tells whether s's changes may be appended to its file: the file is the one this process last read or
// wrote, it needs no rewrite, and its change lines stay within compactAt of its snapshot's size.
func (s *Stack) canAppend(n int) bool {
	return s.disk != (fileID{}) && !s.rewrite && s.changeBytes+n <= max(s.snap, compactAt)
}

// appendFile appends data to s's file and fsyncs it. The file must still be the one s.disk names (else it is
// rewritten whole: ok false). On a failure the file is cut back to its old size, so it keeps its old content.
func (s *Stack) appendFile(data []byte) (ok bool, err error) {
	fd, err := syscall.Open(s.Path, syscall.O_WRONLY|syscall.O_APPEND|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Errorf("opening the ledger file %s to append failed: %v", s.Path, err)
	}
	f := os.NewFile(uintptr(fd), s.Path)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("examining the ledger file %s failed: %v", s.Path, err)
	}
	if fileIDOf(fi) != s.disk {
		return false, nil
	}
	if err := judgeInfo(s.Path, fi, false); err != nil {
		return false, err
	}
	undo := func(err error) error {
		if terr := f.Truncate(fi.Size()); terr == nil {
			_ = syncFile(f)
		}
		return fmt.Errorf("appending to %s failed: %v", s.Path, err)
	}
	if _, err := f.Write(data); err != nil {
		return false, undo(err)
	}
	if err := syncFile(f); err != nil {
		return false, undo(fmt.Errorf("fsync: %v", err))
	}
	if fi, err = f.Stat(); err != nil {
		return false, fmt.Errorf("examining the ledger file %s after appending failed: %v", s.Path, err)
	}
	s.disk, s.changeBytes = fileIDOf(fi), s.changeBytes+len(data)
	return true, nil
}
