package ledger

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// The Ledger in memory: every stack's records, indexed by the entries they own, and the updates a request makes
// (Put, Drop, Set), each keeping the index, the stack's lines and its changes to save in step.

// Ledger is every stack's record, loaded under the lock (or read-only without it).
type Ledger struct {
	stacks    map[string]*Stack
	svcOwner  map[ipvs.ServiceKey]string
	destOwner map[ipvs.ServiceKey]map[ipvs.DestKey]string // by service: a deleted service drops its dests at once
	dirty     map[string]bool
	lockFile  *os.File
	scratch   []byte // the last file Save encoded, its space reused: a serving helper rewrites the same file often
	// unreadable are the stack files the last refresh could not read or did not trust, by path (→ why); strays
	// the files in the stacks directory that are not stack files at all. Neither is part of the ledger.
	unreadable map[string]error
	strays     []string
	// chainJudged: the last refresh found every directory from Root down to stacksDir trusted. Save and a removal
	// in the same request then need not judge them again: they are root's and writable by root alone, so they
	// cannot change under the lock unless root changes them.
	chainJudged bool
}

func newLedger() *Ledger {
	return &Ledger{stacks: map[string]*Stack{}, svcOwner: map[ipvs.ServiceKey]string{}, destOwner: map[ipvs.ServiceKey]map[ipvs.DestKey]string{}, dirty: map[string]bool{}}
}

// stack returns owner's record, making an empty one.
func (l *Ledger) stack(owner string) *Stack {
	s := l.stacks[owner]
	if s == nil {
		s = newStack(owner)
		l.stacks[owner] = s
	}
	return s
}

// ServiceOwner is the stack owning a service, "" when none.
func (l *Ledger) ServiceOwner(k ipvs.ServiceKey) string { return l.svcOwner[k] }

// DestOwner is the stack owning a real server, "" when none.
func (l *Ledger) DestOwner(svc ipvs.ServiceKey, d ipvs.DestKey) string { return l.destOwner[svc][d] }

// DestHolder is the resource holding a real server within its owner's stack, "" when none is recorded.
func (l *Ledger) DestHolder(svc ipvs.ServiceKey, d ipvs.DestKey) string {
	if owner := l.DestOwner(svc, d); owner != "" {
		return l.stacks[owner].Dests[DestID{svc, d}].Holder
	}
	return ""
}

func (l *Ledger) setDestOwner(id DestID, owner string) {
	m := l.destOwner[id.Svc]
	if m == nil {
		m = map[ipvs.DestKey]string{}
		l.destOwner[id.Svc] = m
	}
	m[id.Dest] = owner
}

// PutService records a service as now in the kernel under owner, taking it from any other stack. changed: the

// SettingsOwner is the stack holding settings on this director, "" when none.
func (l *Ledger) SettingsOwner() string {
	for owner, s := range l.stacks {
		if s.Settings != nil {
			return owner
		}
	}
	return ""
}

// Settings is owner's settings record, nil when it has none.
func (l *Ledger) Settings(owner string) *SettingsRecord {
	if s := l.stacks[owner]; s != nil {
		return s.Settings
	}
	return nil
}

// ServiceHealth is the health settings owner's record of service k holds, nil when none.
func (l *Ledger) ServiceHealth(owner string, k ipvs.ServiceKey) *protocol.ServiceHealth {
	if s := l.stacks[owner]; s != nil {
		return s.Health[k]
	}
	return nil
}

// Stacks lists the stacks with records, by owner.
func (l *Ledger) Stacks() []*Stack {
	var out []*Stack
	for _, s := range l.stacks {
		if !s.empty() {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Owner < out[j].Owner })
	return out
}

// Changed tells whether anything is still to be saved.
func (l *Ledger) Changed() bool { return len(l.dirty) > 0 }

// reindex rebuilds who owns what from the stacks, in file name order as a whole load reads them (should two files
// claim an entry, the later one has it either way).
func (l *Ledger) reindex() {
	clear(l.svcOwner)
	clear(l.destOwner)
	stacks := make([]*Stack, 0, len(l.stacks))
	for _, s := range l.stacks {
		stacks = append(stacks, s)
	}
	sort.Slice(stacks, func(i, j int) bool { return filepath.Base(stacks[i].Path) < filepath.Base(stacks[j].Path) })
	for _, s := range stacks {
		for k := range s.Services {
			l.svcOwner[k] = s.Owner
		}
		for id := range s.Dests {
			l.setDestOwner(id, s.Owner)
		}
	}
}

// ledger differs from before.
func (l *Ledger) PutService(owner string, k ipvs.ServiceKey, spec protocol.ServiceSpecOut) (changed bool) {
	if prev := l.svcOwner[k]; prev != "" && prev != owner {
		l.stacks[prev].dropService(k)
		l.dirty[prev] = true
	}
	s := l.stack(owner)
	line := mustJSON(ServiceRecord{Service: spec, Health: s.Health[k]})
	if _, ok := s.Services[k]; ok && bytes.Equal(s.svcLines.get(k), line) {
		return false
	}
	s.Services[k], l.svcOwner[k], l.dirty[owner] = spec, owner, true
	s.svcLines.set(k, line)
	s.changed.service(k)
	return true
}

// PutDest records a real server as now in the kernel under owner and holder, taking it from any other stack. An
// empty holder keeps the one the owner's record already has (an op that names none does not clear it).
func (l *Ledger) PutDest(owner, holder string, svc ipvs.ServiceKey, d ipvs.DestKey, spec protocol.DestSpecOut) (changed bool) {
	id := DestID{svc, d}
	if prev := l.DestOwner(svc, d); prev != "" && prev != owner {
		l.stacks[prev].dropDests(func(x DestID) bool { return x == id })
		l.dirty[prev] = true
	}
	s := l.stack(owner)
	old, had := s.Dests[id]
	if had && holder == "" {
		holder = old.Holder
	}
	rec := DestRecord{Service: protocol.ServiceKeyJSON(svc), Dest: spec, Holder: holder}
	if had {
		rec.HealthCheck = old.HealthCheck // an op that says nothing of the check keeps it (SetDestCheck changes it)
	}
	line := mustJSON(rec)
	if had && bytes.Equal(s.destLines.get(id), line) {
		return false
	}
	s.Dests[id], l.dirty[owner] = rec, true
	s.destLines.set(id, line)
	s.changed.dest(id)
	l.setDestOwner(id, owner)
	return true
}

// DropService forgets a deleted service and every real server recorded under it, in every stack.
func (l *Ledger) DropService(k ipvs.ServiceKey) (changed bool) {
	if owner := l.svcOwner[k]; owner != "" {
		l.stacks[owner].dropService(k)
		delete(l.svcOwner, k)
		l.dirty[owner], changed = true, true
	}
	owners := map[string]bool{}
	for _, owner := range l.destOwner[k] {
		owners[owner] = true
	}
	for owner := range owners {
		l.stacks[owner].dropDests(func(x DestID) bool { return x.Svc == k })
		l.dirty[owner], changed = true, true
	}
	delete(l.destOwner, k)
	return changed
}

// DropDest forgets a deleted real server.
func (l *Ledger) DropDest(svc ipvs.ServiceKey, d ipvs.DestKey) (changed bool) {
	id := DestID{svc, d}
	owner := l.DestOwner(svc, d)
	if owner == "" {
		return false
	}
	l.stacks[owner].dropDests(func(x DestID) bool { return x == id })
	delete(l.destOwner[svc], d)
	l.dirty[owner] = true
	return true
}

// SetSettings replaces owner's settings record (nil drops it).
func (l *Ledger) SetSettings(owner string, set *SettingsRecord) (changed bool) {
	s := l.stack(owner)
	if bytes.Equal(mustJSON(s.Settings), mustJSON(set)) {
		return false
	}
	s.Settings, l.dirty[owner] = set, true
	s.changed.settings = true
	return true
}

// SetDestCheck records the health check owner declared for one of its real servers (nil: none). changed: the
// ledger differs from before. The real server's record must exist (PutDest ran first in the same op).
func (l *Ledger) SetDestCheck(owner string, svc ipvs.ServiceKey, d ipvs.DestKey, check *protocol.HealthCheck) (changed bool) {
	s, id := l.stacks[owner], DestID{svc, d}
	if s == nil {
		return false
	}
	rec, ok := s.Dests[id]
	if !ok {
		return false
	}
	rec.HealthCheck = check
	line := mustJSON(rec)
	if bytes.Equal(s.destLines.get(id), line) {
		return false
	}
	s.Dests[id], l.dirty[owner] = rec, true
	s.destLines.set(id, line)
	s.changed.dest(id)
	return true
}

// SetServiceHealth records a service's minHealthy and sorry server (nil or empty: none). The service's record must
// exist (PutService ran first in the same op).
func (l *Ledger) SetServiceHealth(owner string, k ipvs.ServiceKey, h *protocol.ServiceHealth) (changed bool) {
	s := l.stacks[owner]
	if s == nil {
		return false
	}
	if _, ok := s.Services[k]; !ok {
		return false
	}
	if h != nil && h.MinHealthy == nil && h.SorryServer == nil {
		h = nil
	}
	if h == nil {
		delete(s.Health, k)
	} else {
		s.Health[k] = h
	}
	line := mustJSON(ServiceRecord{Service: s.Services[k], Health: h})
	if bytes.Equal(s.svcLines.get(k), line) {
		return false
	}
	l.dirty[owner] = true
	s.svcLines.set(k, line)
	s.changed.service(k)
	return true
}
