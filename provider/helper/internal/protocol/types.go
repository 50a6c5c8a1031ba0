// Package protocol is the JSON contract of PROTOCOL.md: request and response shapes, the decoding of one
// operation with every field checked, and the rendering of kernel entries as results.
package protocol

import (
	"bytes"
	"encoding/json"
)

// Version is the protocol version this helper speaks.
const Version = 1

// Request is one batch.
type Request struct {
	V   int               `json:"v"`
	Ops []json.RawMessage `json:"ops"`
}

// Response answers a Request; Results[i] answers Ops[i].
type Response struct {
	V       int      `json:"v"`
	Results []Result `json:"results"`
	Error   *Error   `json:"error,omitempty"`
}

// Result is one operation's outcome: "ok" plus op-specific fields, or an error.
type Result map[string]any

// Error is a failed operation: a stable code, the kernel's errno (0 when the helper refused by itself) and a sentence.
type Error struct {
	Code    string `json:"code"`
	Errno   int    `json:"errno"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }

// Stable error codes.
const (
	CodeBadRequest      = "BAD_REQUEST"
	CodeExists          = "EXISTS"
	CodeServiceNotFound = "SERVICE_NOT_FOUND"
	CodeNotFound        = "NOT_FOUND"
	CodeSchedUnavail    = "SCHEDULER_UNAVAILABLE"
	CodeIPVSUnavail     = "IPVS_UNAVAILABLE"
	CodeOutOfRange      = "OUT_OF_RANGE"
	CodeInvalid         = "INVALID"
	CodeUnsupported     = "UNSUPPORTED_KERNEL"
	CodePermission      = "PERMISSION"
	CodeTimeout         = "TIMEOUT"
	CodeInternal        = "INTERNAL"

	// Ownership ledger (errno 0: refused by the helper).
	CodeOwned            = "OWNED"
	CodeForeignDests     = "FOREIGN_DESTS"
	CodeManagedElsewhere = "MANAGED_ELSEWHERE"
	CodeLedger           = "LEDGER"
)

// Fail is the result of a failed operation.
func Fail(e *Error) Result { return Result{"ok": false, "error": e} }

// OK is a successful result with the given fields.
func OK(fields Result) Result {
	r := Result{"ok": true}
	for k, v := range fields {
		r[k] = v
	}
	return r
}

// Opt is a JSON field that can be absent (Set=false), null (Null=true) or a value.
type Opt[T any] struct {
	Set, Null bool
	Val       T
}

// UnmarshalJSON records presence; encoding/json calls it for null too.
func (o *Opt[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		o.Null = true
		return nil
	}
	return strictUnmarshal(b, &o.Val)
}

func strictUnmarshal(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	return d.Decode(v)
}
