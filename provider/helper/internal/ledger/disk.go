package ledger

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// The ledger on disk: the lock, reading the stack files (Open, Load, refresh) and writing them (Save: change
// lines appended, or the file replaced atomically, or removed), every path judged first (paths.go).

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

// loadFile reads a stack file into a new stack (the caller reindexes).
func (l *Ledger) loadFile(path string) error {
	raw, fi, err := readTrusted(path)
	if err != nil {
		return err
	}
	s, err := decodeFile(path, raw)
	if err != nil {
		return err
	}
	s.disk = fileIDOf(fi)
	l.stacks[s.Owner] = s
	return nil
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
