package ledger

import (
	"slices"
)

// The line cache: each record's line in its stack file, rendered once and kept until the record changes, so
// saving a stack re-encodes only what a request changed.

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
