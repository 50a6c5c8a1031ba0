package sysctl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"
)

// Value is a setting's value in canonical form: the text written to its /proc file ("1", "3 50", "0-3,8").
// The zero Value is no value.
type Value struct {
	kind Kind
	text string
	// same is what Equal compares: text, except that a defense mode's automatic modes 1 and 2 are one.
	same string
}

// Text is the canonical text as written to /proc (without the newline).
func (v Value) Text() string { return v.text }

// Equal reports whether two values are the same setting of the kernel.
func (v Value) Equal(o Value) bool { return v.kind == o.kind && v.same == o.same }

// JSON is the value on the wire: an integer, [threshold, period] for a pair, a string for a cpulist.
func (v Value) JSON() json.RawMessage {
	switch v.kind {
	case KindPair:
		a, b, _ := strings.Cut(v.text, " ")
		return json.RawMessage("[" + a + "," + b + "]")
	case KindCPUList:
		out, _ := json.Marshal(v.text)
		return out
	}
	return json.RawMessage(v.text)
}

// MarshalJSON writes JSON(), so a Value can sit in the ledger and result structs as it is.
func (v Value) MarshalJSON() ([]byte, error) {
	if v.kind == "" {
		return []byte("null"), nil
	}
	return v.JSON(), nil
}

func (s Setting) value(text string) Value {
	v := Value{kind: s.Kind, text: text, same: text}
	if s.Defense && (text == "1" || text == "2") {
		v.same = "auto"
	}
	return v
}

var jsonInt = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)

// Decode reads a value a stack asks for: its shape and the setting's range are checked; the error names the
// sysctl and the rule.
func (s Setting) Decode(raw json.RawMessage) (Value, error) {
	return s.decode(raw, true)
}

// Load reads a value stored earlier with JSON() (the ledger's applied and original values): the shape is checked
// but not the range, since the kernel may hold values the table does not let a stack set (set by hand, or a
// default outside the documented range) and they must be put back as they were.
func (s Setting) Load(raw json.RawMessage) (Value, error) {
	return s.decode(raw, false)
}

func (s Setting) decode(raw json.RawMessage, strict bool) (Value, error) {
	raw = bytes.TrimSpace(raw)
	switch s.Kind {
	case KindInt:
		n, ok := parseInt(string(raw))
		if !ok {
			return Value{}, fmt.Errorf("%s must be an integer, %s, not %s", s.Name, s.rule(), raw)
		}
		if strict {
			if err := s.check(n); err != nil {
				return Value{}, err
			}
		}
		return s.value(n.String()), nil
	case KindPair:
		var pair []json.RawMessage
		if json.Unmarshal(raw, &pair) != nil || len(pair) != 2 {
			return Value{}, fmt.Errorf("%s must be [threshold, period] (two integers), not %s", s.Name, raw)
		}
		a, okA := parseInt(string(bytes.TrimSpace(pair[0])))
		b, okB := parseInt(string(bytes.TrimSpace(pair[1])))
		if !okA || !okB {
			return Value{}, fmt.Errorf("%s must be [threshold, period] (two integers), not %s", s.Name, raw)
		}
		if strict {
			if err := s.checkPair(a, b); err != nil {
				return Value{}, err
			}
		}
		return s.value(a.String() + " " + b.String()), nil
	case KindCPUList:
		var str string
		if json.Unmarshal(raw, &str) != nil {
			return Value{}, fmt.Errorf("%s must be a cpulist string like \"0-3,8\", not %s", s.Name, raw)
		}
		text, err := canonicalCPUList(str, s.Max)
		if err != nil {
			return Value{}, fmt.Errorf("%s: %w", s.Name, err)
		}
		return s.value(text), nil
	}
	return Value{}, fmt.Errorf("%s has unknown kind %q", s.Name, s.Kind)
}

// parseText reads the content of the setting's /proc file.
func (s Setting) parseText(content string) (Value, error) {
	content = strings.TrimRight(content, "\n")
	switch s.Kind {
	case KindInt:
		if n, ok := parseInt(strings.TrimSpace(content)); ok {
			return s.value(n.String()), nil
		}
	case KindPair:
		f := strings.Fields(content)
		if len(f) == 2 {
			a, okA := parseInt(f[0])
			b, okB := parseInt(f[1])
			if okA && okB {
				return s.value(a.String() + " " + b.String()), nil
			}
		}
	case KindCPUList:
		// The kernel prints %*pbl; re-canonicalize so that it compares with a decoded value.
		if text, err := canonicalCPUList(strings.TrimSpace(content), maxCPU); err == nil {
			return s.value(text), nil
		}
	}
	return Value{}, fmt.Errorf("%s holds %q, which is not a %s value", s.Name, content, s.Kind)
}

// parseInt reads a decimal integer of any size (sync_qlen_max is an unsigned long); JSON exponents and
// fractions are refused.
func parseInt(s string) (*big.Int, bool) {
	if !jsonInt.MatchString(s) {
		return nil, false
	}
	n, ok := new(big.Int).SetString(s, 10)
	return n, ok
}

func (s Setting) rule() string {
	r := strconv.FormatInt(s.Min, 10) + ".." + strconv.FormatInt(s.Max, 10)
	if s.PowerOfTwo {
		r = "a power of two in " + r
	}
	return r
}

func (s Setting) check(n *big.Int) error {
	if n.Cmp(big.NewInt(s.Min)) < 0 || n.Cmp(big.NewInt(s.Max)) > 0 {
		return fmt.Errorf("%s must be %s, not %s", s.Name, s.rule(), n)
	}
	if s.PowerOfTwo && n.Int64()&(n.Int64()-1) != 0 {
		return fmt.Errorf("%s must be %s, not %s", s.Name, s.rule(), n)
	}
	return nil
}

func (s Setting) checkPair(a, b *big.Int) error {
	for _, n := range []*big.Int{a, b} {
		if n.Cmp(big.NewInt(s.Min)) < 0 || n.Cmp(big.NewInt(s.Max)) > 0 {
			return fmt.Errorf("%s must be [threshold, period], each %s, not [%s,%s]", s.Name, s.rule(), a, b)
		}
	}
	// ip_vs_ctl.c proc_do_sync_threshold: EINVAL unless threshold < period, or period 0 (sync on state changes).
	if b.Sign() != 0 && a.Cmp(b) >= 0 {
		return fmt.Errorf("%s threshold must be below the period (or the period 0), not [%s,%s]", s.Name, a, b)
	}
	return nil
}
