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
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// FileVersion is the stack file format's version.
const FileVersion = 1

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
}

// DestRecord is a recorded real server and the identity of its service.
type DestRecord struct {
	Service protocol.ServiceKeyOut `json:"service"`
	Dest    protocol.DestSpecOut   `json:"dest"`
	// Holder is the resource of the owning stack that holds the real server (a URN), "" when the ops gave none.
	Holder string `json:"holder,omitempty"`
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

// Stack is one stack's record.
type Stack struct {
	Owner    string
	Path     string
	Services map[ipvs.ServiceKey]protocol.ServiceSpecOut
	Dests    map[DestID]DestRecord
	Settings *Settings
}

func (s *Stack) empty() bool { return len(s.Services) == 0 && len(s.Dests) == 0 && s.Settings == nil }

// Ledger is every stack's record, loaded under the lock (or read-only without it).
type Ledger struct {
	stacks    map[string]*Stack
	svcOwner  map[ipvs.ServiceKey]string
	destOwner map[ipvs.ServiceKey]map[ipvs.DestKey]string // by service: a deleted service drops its dests at once
	dirty     map[string]bool
	lockFile  *os.File
}

// FileName is the stack file of an owner: the first 32 hex digits of sha256(owner).
func FileName(owner string) string {
	h := sha256.Sum256([]byte(owner))
	return hex.EncodeToString(h[:])[:32] + ".json"
}

// Open takes the lock (waiting until deadline at most) and loads the ledger; Close releases it.
func Open(deadline time.Time) (*Ledger, error) {
	f, err := lock(deadline)
	if err != nil {
		return nil, err
	}
	l, err := Load()
	if err != nil {
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

// Load reads every stack file without the lock: files are replaced by rename, so each one read is whole.
func Load() (*Ledger, error) {
	l := &Ledger{stacks: map[string]*Stack{}, svcOwner: map[ipvs.ServiceKey]string{}, destOwner: map[ipvs.ServiceKey]map[ipvs.DestKey]string{}, dirty: map[string]bool{}}
	if err := judgeDirs(stacksDir(), false, 0); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return l, nil // no ledger yet
		}
		return nil, err
	}
	entries, err := os.ReadDir(stacksDir())
	if err != nil {
		return nil, fmt.Errorf("listing the ledger directory %s failed: %v", stacksDir(), err)
	}
	for _, ent := range entries {
		if !strings.HasSuffix(ent.Name(), ".json") || strings.HasPrefix(ent.Name(), ".") {
			continue // a temp file left by a helper that died mid-write
		}
		if err := l.loadFile(filepath.Join(stacksDir(), ent.Name())); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// readTrusted reads a file opened O_NOFOLLOW that is judged like the directories above it.
func readTrusted(path string) ([]byte, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("opening the ledger file %s failed: %v", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("examining the ledger file %s failed: %v", path, err)
	}
	if err := judgeInfo(path, fi, false); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if _, err := b.ReadFrom(f); err != nil {
		return nil, fmt.Errorf("reading the ledger file %s failed: %v", path, err)
	}
	return b.Bytes(), nil
}

func (l *Ledger) loadFile(path string) error {
	raw, err := readTrusted(path)
	if err != nil {
		return err
	}
	var f file
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	if err := d.Decode(&f); err != nil {
		return fmt.Errorf("the ledger file %s is not a valid stack record: %v", path, err)
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("the ledger file %s is not a valid stack record: %s", path, fmt.Sprintf(format, a...))
	}
	if f.V != FileVersion {
		return bad("version %d (this helper reads version %d)", f.V, FileVersion)
	}
	if e := protocol.CheckOwner(f.Owner, "owner"); e != nil {
		return bad("%s", e.Message)
	}
	if filepath.Base(path) != FileName(f.Owner) {
		return bad("it holds stack %s, whose file is %s", f.Owner, FileName(f.Owner))
	}
	s := l.stack(f.Owner)
	s.Settings = f.Settings
	for _, r := range f.Services {
		key, e := serviceKey(r.Service.ServiceKeyOut)
		if e != nil {
			return bad("%s", e.Message)
		}
		s.Services[key] = r.Service
		l.svcOwner[key] = f.Owner
	}
	// Every owned request loads the whole ledger: each distinct service is decoded once, not once per real server.
	svcKeys := map[string]ipvs.ServiceKey{}
	for _, r := range f.Dests {
		ks := string(mustJSON(r.Service))
		svc, seen := svcKeys[ks]
		if !seen {
			var e *protocol.Error
			if svc, e = serviceKey(r.Service); e != nil {
				return bad("%s", e.Message)
			}
			svcKeys[ks] = svc
		}
		dest, e := protocol.DestKeyOf(r.Dest.Address, r.Dest.Port)
		if e != nil {
			return bad("%s", e.Message)
		}
		id := DestID{svc, dest}
		s.Dests[id] = r
		l.setDestOwner(id, f.Owner)
	}
	return nil
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
		s = &Stack{Owner: owner, Path: filepath.Join(stacksDir(), FileName(owner)),
			Services: map[ipvs.ServiceKey]protocol.ServiceSpecOut{}, Dests: map[DestID]DestRecord{}}
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
		delete(l.stacks[prev].Services, k)
		l.dirty[prev] = true
	}
	s := l.stack(owner)
	if old, ok := s.Services[k]; ok && sameJSON(old, spec) {
		return false
	}
	s.Services[k], l.svcOwner[k], l.dirty[owner] = spec, owner, true
	return true
}

// PutDest records a real server as now in the kernel under owner and holder, taking it from any other stack. An
// empty holder keeps the one the owner's record already has (an op that names none does not clear it).
func (l *Ledger) PutDest(owner, holder string, svc ipvs.ServiceKey, d ipvs.DestKey, spec protocol.DestSpecOut) (changed bool) {
	id := DestID{svc, d}
	if prev := l.DestOwner(svc, d); prev != "" && prev != owner {
		delete(l.stacks[prev].Dests, id)
		l.dirty[prev] = true
	}
	s := l.stack(owner)
	if old, ok := s.Dests[id]; ok && holder == "" {
		holder = old.Holder
	}
	rec := DestRecord{Service: protocol.ServiceKeyJSON(svc), Dest: spec, Holder: holder}
	if old, ok := s.Dests[id]; ok && sameJSON(old, rec) {
		return false
	}
	s.Dests[id], l.dirty[owner] = rec, true
	l.setDestOwner(id, owner)
	return true
}

// DropService forgets a deleted service and every real server recorded under it, in every stack.
func (l *Ledger) DropService(k ipvs.ServiceKey) (changed bool) {
	if owner := l.svcOwner[k]; owner != "" {
		delete(l.stacks[owner].Services, k)
		delete(l.svcOwner, k)
		l.dirty[owner], changed = true, true
	}
	for d, owner := range l.destOwner[k] {
		delete(l.stacks[owner].Dests, DestID{k, d})
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
	delete(l.stacks[owner].Dests, id)
	delete(l.destOwner[svc], d)
	l.dirty[owner] = true
	return true
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
	if sameJSON(s.Settings, set) {
		return false
	}
	s.Settings, l.dirty[owner] = set, true
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

func sameJSON(a, b any) bool { return bytes.Equal(mustJSON(a), mustJSON(b)) }

// ServiceList is the stack's services in ipvsadm's order.
func (s *Stack) ServiceList() []protocol.ServiceSpecOut {
	keys := make([]ipvs.ServiceKey, 0, len(s.Services))
	for k := range s.Services {
		keys = append(keys, k)
	}
	sortKeys(keys)
	out := make([]protocol.ServiceSpecOut, len(keys))
	for i, k := range keys {
		out[i] = s.Services[k]
	}
	return out
}

// DestList is the stack's real servers in ipvsadm's order.
func (s *Stack) DestList() []DestRecord {
	ids := make([]DestID, 0, len(s.Dests))
	for id := range s.Dests {
		ids = append(ids, id)
	}
	sortDestIDs(ids)
	out := make([]DestRecord, len(ids))
	for i, id := range ids {
		out[i] = s.Dests[id]
	}
	return out
}

// Record is the stack's record as its file holds it (for `ipvs-helper owners --json`).
func (s *Stack) Record() any {
	f := file{V: FileVersion, Owner: s.Owner, Services: []serviceRec{}, Dests: s.DestList(), Settings: s.Settings}
	for _, svc := range s.ServiceList() {
		f.Services = append(f.Services, serviceRec{Service: svc})
	}
	return f
}

// encode renders a stack file.
func (s *Stack) encode() []byte {
	b, err := json.MarshalIndent(s.Record(), "", " ")
	if err != nil {
		panic(err) // plain structs and JSON already checked
	}
	return append(b, '\n')
}

func sortKeys(keys []ipvs.ServiceKey) {
	sort.Slice(keys, func(i, j int) bool {
		a, b := ipvs.Service{ServiceKey: keys[i]}, ipvs.Service{ServiceKey: keys[j]}
		return ipvs.CmpServices(&a, &b) < 0
	})
}

func sortDestIDs(ids []DestID) {
	sort.Slice(ids, func(i, j int) bool {
		a, b := ipvs.Service{ServiceKey: ids[i].Svc}, ipvs.Service{ServiceKey: ids[j].Svc}
		if c := ipvs.CmpServices(&a, &b); c != 0 {
			return c < 0
		}
		x, y := ipvs.Dest{DestKey: ids[i].Dest}, ipvs.Dest{DestKey: ids[j].Dest}
		return ipvs.CmpDests(&x, &y) < 0
	})
}

// Save writes every changed stack file (atomically: temp file, fsync, rename, directory fsync), removes the files
// of stacks left empty, and the state directory when no stack is left. On error the files not yet written keep
// their old content; the error names the file.
func (l *Ledger) Save() error {
	owners := make([]string, 0, len(l.dirty))
	for o := range l.dirty {
		owners = append(owners, o)
	}
	sort.Strings(owners)
	anyLeft := len(l.Stacks()) > 0
	if anyLeft {
		if err := judgeDirs(Dir, true, 0o700); err != nil {
			return err
		}
		if err := judgeDirs(stacksDir(), true, 0o700); err != nil {
			return err
		}
	}
	for _, o := range owners {
		s := l.stacks[o]
		var err error
		if s.empty() {
			err = removeFile(s.Path)
		} else {
			err = writeAtomic(s.Path, s.encode(), 0o600)
		}
		if err != nil {
			return err
		}
		delete(l.dirty, o)
	}
	if !anyLeft {
		for _, d := range []string{stacksDir(), Dir} {
			if err := judge(d, true); errors.Is(err, os.ErrNotExist) {
				continue
			} else if err != nil {
				return err
			}
			if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("removing the empty ledger directory %s failed: %v", d, err)
			}
		}
	}
	return nil
}

func removeFile(path string) error {
	if err := judgeDirs(filepath.Dir(path), false, 0); errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
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
