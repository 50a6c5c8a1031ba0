package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// FileVersion is the stack file format's version: 2 added change lines after the records (changelines.go); 3 added
// record fields an older reader does not know (a service's bindAddress and health, a real server's health, the
// settings' ftp and healthMetricsDirectory). Versions 1 and 2 are read too, and a file of either is rewritten whole as
// the current version on its first change, so no newer field is ever written under an older version number. A file
// of a later version is refused as written by a newer pulumi-ipvs (loadFile), whatever fields it holds.
const FileVersion = 3

// file is one stack's record on disk.
type file struct {
	V        int          `json:"v"`
	Owner    string       `json:"owner"`
	Services []serviceRec `json:"services"`
	Dests    []DestRecord `json:"dests"`
	Settings *Settings    `json:"settings"`
}

type serviceRec struct {
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

// Settings is a stack's director settings: what it applied, and the values found before it first set each item.
// Both are protocol Settings objects, kept as JSON: the engine decodes them.
type Settings struct {
	Applied  json.RawMessage `json:"applied"`
	Original json.RawMessage `json:"original"`
}

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
	Settings *Settings

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
			return mustJSON(serviceRec{Service: s.Services[k], Health: s.Health[k]})
		}}
	s.destLines = lines[DestID]{byKey: map[DestID]*line[DestID]{}, cmp: cmpDestIDs,
		render: func(id DestID) []byte { return mustJSON(s.Dests[id]) }}
	return s
}

// lines is one kind of a stack's records in the file's order, each with its line in the file: rendered when first
// needed, replaced only when its record changes. The order is ipvsadm's, kept by inserting each new record at its
// place; a loaded file keeps its own order (the helper wrote it so), which makes rewriting a file a fixed point
// even where ipvsadm's comparison is not transitive.
type lines[K comparable] struct {
	order  []*line[K]
	byKey  map[K]*line[K]
	cmp    func(a, b K) int
	render func(K) []byte
}

type line[K comparable] struct {
	key K
	b   []byte
}

// load appends a record read from a file (a repeated one keeps its first place).
func (ls *lines[K]) load(k K) {
	if ls.byKey[k] == nil {
		ln := &line[K]{key: k}
		ls.byKey[k] = ln
		ls.order = append(ls.order, ln)
	}
}

// get is a record's line.
func (ls *lines[K]) get(k K) []byte { return ls.text(ls.byKey[k]) }

func (ls *lines[K]) text(ln *line[K]) []byte {
	if ln.b == nil {
		ln.b = ls.render(ln.key)
	}
	return ln.b
}

// set is a record's new line; a new record goes to its place in the order.
func (ls *lines[K]) set(k K, b []byte) {
	if ln := ls.byKey[k]; ln != nil {
		ln.b = b
		return
	}
	ln := &line[K]{key: k, b: b}
	i, _ := slices.BinarySearchFunc(ls.order, k, func(x *line[K], k K) int { return ls.cmp(x.key, k) })
	ls.order = slices.Insert(ls.order, i, ln)
	ls.byKey[k] = ln
}

// drop forgets the records that match, in one pass over the order.
func (ls *lines[K]) drop(match func(K) bool) {
	ls.order = slices.DeleteFunc(ls.order, func(ln *line[K]) bool {
		if match(ln.key) {
			delete(ls.byKey, ln.key)
			return true
		}
		return false
	})
}

// appendTo renders the records as a JSON list, one per line.
func (ls *lines[K]) appendTo(b []byte) []byte {
	b = append(b, '[')
	for i, ln := range ls.order {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(append(b, '\n'), ls.text(ln)...)
	}
	if len(ls.order) > 0 {
		b = append(b, '\n')
	}
	return append(b, ']')
}

func (ls *lines[K]) size() int {
	n := 0
	for _, ln := range ls.order {
		n += len(ls.text(ln)) + 2
	}
	return n
}

func (s *Stack) empty() bool { return len(s.Services) == 0 && len(s.Dests) == 0 && s.Settings == nil }

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

// FileName is the stack file of an owner: the first 32 hex digits of sha256(owner).
func FileName(owner string) string {
	h := sha256.Sum256([]byte(owner))
	return hex.EncodeToString(h[:])[:32] + ".json"
}

// Open takes the lock (waiting until deadline at most) and loads the ledger; Close releases it. prev, when not nil,
// is the ledger this process opened last (closed since): Open brings it up to date and returns it, re-reading only
// the stack files another helper replaced meanwhile (always under this lock, so comparing each file's identity
// with the one prev read or wrote is sound). A prev holding unsaved changes (a failed Save) is dropped and the
// ledger loaded whole. Open consumes prev: on error it returns nil and prev must not be used again.
func Open(deadline time.Time, prev *Ledger) (*Ledger, error) {
	f, err := lock(deadline)
	if err != nil {
		return nil, err
	}
	l := prev
	if l == nil || l.Changed() {
		l = newLedger()
	}
	if err := l.refresh(); err != nil {
		f.Close()
		return nil, err
	}
	l.lockFile = f
	return l, nil
}

// Close releases the lock (a read-only ledger has none).
func (l *Ledger) Close() {
	if l.lockFile != nil {
		l.lockFile.Close()
		l.lockFile = nil
	}
}

// Load reads every stack file without the lock: files are replaced by rename or appended to by whole lines (an
// unfinished last line is ignored), so each one read is a state some request left, or part of one.
func Load() (*Ledger, error) {
	l := newLedger()
	if err := l.refresh(); err != nil {
		return nil, err
	}
	return l, nil
}

// isStackFileName tells whether name is one FileName makes: 32 lower-case hex digits and ".json".
func isStackFileName(name string) bool {
	hexPart, ok := strings.CutSuffix(name, ".json")
	if !ok || len(hexPart) != 32 {
		return false
	}
	for _, c := range hexPart {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// refresh makes l what the stack files hold: the directories are judged and listed each time, a file is read
// again only when its identity differs from the one l last read or wrote, and a stack whose file is gone is
// forgotten. One stack file that cannot be read (or is not trusted) does not stop the others: it is listed in
// Unreadable and what it might hold is blocked (Blocking); a file that is not a stack file is listed in Strays and
// ignored.
func (l *Ledger) refresh() error {
	var names []string
	l.chainJudged = false
	l.unreadable, l.strays = map[string]error{}, nil
	switch err := judgeDirs(stacksDir(), false, 0); {
	case errors.Is(err, os.ErrNotExist): // no ledger yet
	case err != nil:
		return err
	default:
		l.chainJudged = true
		entries, err := os.ReadDir(stacksDir())
		if err != nil {
			return fmt.Errorf("listing the ledger directory %s failed: %v", stacksDir(), err)
		}
		for _, ent := range entries {
			switch {
			case strings.HasPrefix(ent.Name(), "."): // a temp file left by a helper that died mid-write
			case isStackFileName(ent.Name()):
				names = append(names, ent.Name())
			default:
				l.strays = append(l.strays, filepath.Join(stacksDir(), ent.Name()))
			}
		}
	}
	cached := make(map[string]*Stack, len(l.stacks))
	for _, s := range l.stacks {
		cached[filepath.Base(s.Path)] = s
	}
	changed := false
	forget := func(s *Stack) {
		delete(l.stacks, s.Owner)
		changed = changed || !s.empty() // an empty stack owns nothing in the indexes
	}
	for _, name := range names {
		path := filepath.Join(stacksDir(), name)
		s := cached[name]
		delete(cached, name)
		if s != nil && s.disk != (fileID{}) {
			fi, err := os.Lstat(path)
			if err == nil {
				err = judgeInfo(path, fi, false)
			} else {
				err = fmt.Errorf("examining the ledger file %s failed: %v", path, err)
			}
			if err == nil && fileIDOf(fi) == s.disk {
				continue
			}
		}
		if s != nil {
			forget(s)
		}
		if err := l.loadFile(path); err != nil {
			l.unreadable[path] = err
		}
		changed = true
	}
	for _, s := range cached {
		forget(s)
	}
	if changed {
		l.reindex()
	}
	return nil
}

// Unreadable lists the stack files the ledger could not read or does not trust, in name order, each with why.
func (l *Ledger) Unreadable() []error {
	paths := make([]string, 0, len(l.unreadable))
	for p := range l.unreadable {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	out := make([]error, len(paths))
	for i, p := range paths {
		out[i] = l.unreadable[p]
	}
	return out
}

// Strays lists the files in the stacks directory that are not stack files (ignored, never trusted).
func (l *Ledger) Strays() []string { return l.strays }

// StrayWarning says that the stray files are ignored ("" when there are none).
func (l *Ledger) StrayWarning() string {
	if len(l.strays) == 0 {
		return ""
	}
	return fmt.Sprintf("ignoring %s in the ledger directory %s: not stack files (named like %s), so never read; move them elsewhere",
		strings.Join(l.strays, ", "), stacksDir(), FileName("organization/project/stack"))
}

// SkippedAdvice says what to do about a stack file the ledger could not read (err names the file).
func SkippedAdvice(err error) string {
	return fmt.Sprintf("%v; fix that file, or move it out of %s (its stack then owns nothing on this director and adopts its entries again)", err, stacksDir())
}

// Blocking is the first unreadable stack file that might hold a record a change must know: owner's own file
// (which a save would overwrite), or, when the entry has no readable owner (unowned), any unreadable file, since
// the record could be in it. nil when the change may go on.
func (l *Ledger) Blocking(owner string, unowned bool) error {
	if err := l.unreadable[filepath.Join(stacksDir(), FileName(owner))]; err != nil {
		return err
	}
	if unowned {
		if list := l.Unreadable(); len(list) > 0 {
			return list[0]
		}
	}
	return nil
}

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

// readTrusted reads a file opened O_NOFOLLOW that is judged like the directories above it; fi is its fstat.
func readTrusted(path string) (data []byte, fi os.FileInfo, err error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("opening the ledger file %s failed: %v", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, nil, fmt.Errorf("examining the ledger file %s failed: %v", path, err)
	}
	if err := judgeInfo(path, fi, false); err != nil {
		return nil, nil, err
	}
	b := bytes.NewBuffer(make([]byte, 0, fi.Size()+bytes.MinRead))
	if _, err := b.ReadFrom(f); err != nil {
		return nil, nil, fmt.Errorf("reading the ledger file %s failed: %v", path, err)
	}
	return b.Bytes(), fi, nil
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

// loadFile reads a stack file into a new stack (the caller reindexes).
func (l *Ledger) loadFile(path string) error {
	raw, fi, err := readTrusted(path)
	if err != nil {
		return err
	}
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
			return newerFile(path, v.V)
		}
		return fmt.Errorf("the ledger file %s is not a valid stack record: %v", path, err)
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("the ledger file %s is not a valid stack record: %s", path, fmt.Sprintf(format, a...))
	}
	if f.V > FileVersion {
		return newerFile(path, f.V)
	}
	if f.V < 1 {
		return bad("version %d (this helper reads versions 1 to %d)", f.V, FileVersion)
	}
	if e := protocol.CheckOwner(f.Owner, "owner"); e != nil {
		return bad("%s", e.Message)
	}
	if filepath.Base(path) != FileName(f.Owner) {
		return bad("it holds stack %s, whose file is %s", f.Owner, FileName(f.Owner))
	}
	s := newStack(f.Owner)
	s.Settings = f.Settings
	for _, r := range f.Services {
		key, e := serviceKey(r.Service.ServiceKeyOut)
		if e != nil {
			return bad("%s", e.Message)
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
				return bad("%s", e.Message)
			}
			svcKeys[identityOf(r.Service)] = svc
		}
		dest, e := protocol.DestKeyOf(r.Dest.Address, r.Dest.Port)
		if e != nil {
			return bad("%s", e.Message)
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
		return err
	}
	s.changeBytes, s.rewrite = len(lines), len(bytes.TrimSpace(rest[len(lines):])) > 0 || f.V != FileVersion
	s.disk, s.changed = fileIDOf(fi), changes{} // the drops replayed are on disk already
	l.stacks[f.Owner] = s
	return nil
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
// ledger differs from before.
func (l *Ledger) PutService(owner string, k ipvs.ServiceKey, spec protocol.ServiceSpecOut) (changed bool) {
	if prev := l.svcOwner[k]; prev != "" && prev != owner {
		l.stacks[prev].dropService(k)
		l.dirty[prev] = true
	}
	s := l.stack(owner)
	line := mustJSON(serviceRec{Service: spec, Health: s.Health[k]})
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
func (l *Ledger) Settings(owner string) *Settings {
	if s := l.stacks[owner]; s != nil {
		return s.Settings
	}
	return nil
}

// SetSettings replaces owner's settings record (nil drops it).
func (l *Ledger) SetSettings(owner string, set *Settings) (changed bool) {
	s := l.stack(owner)
	if bytes.Equal(mustJSON(s.Settings), mustJSON(set)) {
		return false
	}
	s.Settings, l.dirty[owner] = set, true
	s.changed.settings = true
	return true
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

// Record is the stack's record as its file holds it (for `ipvs-helper owners --json`).
func (s *Stack) Record() any {
	f := file{V: FileVersion, Owner: s.Owner, Services: []serviceRec{}, Dests: s.DestList(), Settings: s.Settings}
	for _, ln := range s.svcLines.order {
		f.Services = append(f.Services, serviceRec{Service: s.Services[ln.key], Health: s.Health[ln.key]})
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

// Save writes every changed stack file (atomically: temp file, fsync, rename, directory fsync), removes the files
// of stacks left empty, and the state directory when no stack is left. On error the files not yet written keep
// their old content, and what is left unsaved makes the next Open load the ledger whole; the error names the file.
func (l *Ledger) Save() error {
	owners := make([]string, 0, len(l.dirty))
	for o := range l.dirty {
		owners = append(owners, o)
	}
	sort.Strings(owners)
	anyLeft := len(l.Stacks()) > 0
	if anyLeft && !l.chainJudged {
		if err := judgeDirs(stacksDir(), true, 0o700); err != nil { // Dir too: it is on the way
			return err
		}
		l.chainJudged = true
	}
	for _, o := range owners {
		s := l.stacks[o]
		if s.empty() {
			if err := l.removeFile(s.Path); err != nil {
				return err
			}
			s.disk = fileID{}
		} else if err := l.write(s); err != nil {
			return err
		}
		s.changed = changes{}
		delete(l.dirty, o)
	}
	if !anyLeft {
		l.chainJudged = false
		for _, d := range []string{stacksDir(), Dir} {
			if err := judge(d, true); errors.Is(err, os.ErrNotExist) {
				continue
			} else if err != nil {
				return err
			}
			if err := removeDir(d); err != nil && !errors.Is(err, os.ErrNotExist) && !keptInPlace(err) {
				return fmt.Errorf("removing the empty ledger directory %s failed: %v", d, err)
			}
		}
	}
	return nil
}

// removeDir removes an empty state directory (a test makes it fail as a mount point does).
var removeDir = os.Remove

// keptInPlace tells whether a state directory that could not be removed is simply left: it is a mount point (a bind
// mount, a volume, a persistent path of an immutable host: EBUSY) or holds files that are not the ledger's (a
// volume's lost+found, stray files the ledger ignores: ENOTEMPTY/EEXIST). Removing it is tidying, not the record:
// with no stack file in it the ledger is empty either way, so a delete must not fail over it.
func keptInPlace(err error) bool {
	return errors.Is(err, syscall.EBUSY) || errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST)
}

// write saves a stack's changes: appended as change lines when its file allows (canAppend), else the file rewritten
// whole from the records.
func (l *Ledger) write(s *Stack) error {
	if l.scratch = s.appendChanges(l.scratch[:0]); s.canAppend(len(l.scratch)) {
		if ok, err := s.appendFile(l.scratch); ok || err != nil {
			return err
		}
	}
	l.scratch = s.encode(l.scratch[:0])
	if err := writeAtomic(s.Path, l.scratch, 0o600); err != nil {
		return err
	}
	// Remembered so that the next request of this process does not read back what it wrote.
	fi, err := os.Lstat(s.Path)
	if err != nil {
		return fmt.Errorf("examining the ledger file %s after writing it failed: %v", s.Path, err)
	}
	s.disk, s.snap, s.changeBytes, s.rewrite = fileIDOf(fi), len(l.scratch), 0, false
	return nil
}

// removeFile removes a stack file (path is in stacksDir) and makes that durable.
func (l *Ledger) removeFile(path string) error {
	if !l.chainJudged {
		if err := judgeDirs(filepath.Dir(path), false, 0); errors.Is(err, os.ErrNotExist) {
			return nil
		} else if err != nil {
			return err
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing the ledger file %s failed: %v", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// syncFile is the fsync of a written temp file (a test makes it fail to check that nothing is replaced then).
var syncFile = (*os.File).Sync

// writeAtomic replaces path with data: a new temp file in the same (already judged) directory, fsynced, renamed
// over path, the directory fsynced. On any failure the temp file is removed and path keeps its old content.
func writeAtomic(path string, data []byte, perm uint32) (err error) {
	dir := filepath.Dir(path)
	var f *os.File
	for i := 0; f == nil; i++ {
		tmp := filepath.Join(dir, fmt.Sprintf(".%s.%d.%d.tmp", filepath.Base(path), os.Getpid(), i))
		fd, oerr := syscall.Open(tmp, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, perm)
		if oerr == syscall.EEXIST && i < 100 {
			continue
		}
		if oerr != nil {
			return fmt.Errorf("writing %s failed: creating %s: %v", path, tmp, oerr)
		}
		f = os.NewFile(uintptr(fd), tmp)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("writing %s failed: %v", path, err)
	}
	if err := syncFile(f); err != nil {
		return fmt.Errorf("writing %s failed: fsync: %v", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s failed: %v", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("writing %s failed: rename: %v", path, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening %s to fsync it failed: %v", dir, err)
	}
	defer syscall.Close(fd)
	if err := syscall.Fsync(fd); err != nil {
		return fmt.Errorf("fsync of %s failed: %v", dir, err)
	}
	return nil
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
	line := mustJSON(serviceRec{Service: s.Services[k], Health: h})
	if bytes.Equal(s.svcLines.get(k), line) {
		return false
	}
	l.dirty[owner] = true
	s.svcLines.set(k, line)
	s.changed.service(k)
	return true
}

// ServiceHealth is the health settings owner's record of service k holds, nil when none.
func (l *Ledger) ServiceHealth(owner string, k ipvs.ServiceKey) *protocol.ServiceHealth {
	if s := l.stacks[owner]; s != nil {
		return s.Health[k]
	}
	return nil
}
