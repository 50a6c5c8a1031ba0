package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
)

// Health checks (issue 27): the check a stack declares for a real server (ensureDest "healthCheck") and a service's
// minHealthy and sorry server (ensureService "minHealthy", "sorryServer"). The provider resolves defaults and
// inheritance and sends complete objects; the helper re-checks every field here, records them in the ledger with the
// entry, and `ipvs-helper health` runs them. These types are the wire shape, the ledger's record and the checker's
// configuration alike, so a field is added here once.

// HealthCheck is one real server's check, complete.
type HealthCheck struct {
	Type            string     `json:"type"`
	Port            uint16     `json:"port"`
	IntervalSeconds float64    `json:"intervalSeconds"`
	TimeoutSeconds  float64    `json:"timeoutSeconds"`
	Rise            int        `json:"rise"`
	Fall            int        `json:"fall"`
	HTTP            *HTTPCheck `json:"http,omitempty"`
	DNS             *DNSCheck  `json:"dns,omitempty"`
	OnFailure       string     `json:"onFailure"`
}

// HTTPCheck is what an http or https check sends and expects.
type HTTPCheck struct {
	Path         string `json:"path"`
	Method       string `json:"method"`
	Host         string `json:"host,omitempty"`
	ExpectStatus string `json:"expectStatus"`
	ExpectBody   string `json:"expectBody,omitempty"`
}

// DNSCheck is the question a dns check asks; an answer with RCODE NOERROR is healthy.
type DNSCheck struct {
	Name      string `json:"name"`
	Type      string `json:"type"`
	Transport string `json:"transport"`
}

// ServiceHealth is a service's health settings: how many real servers stay pooled at least, and the sorry server.
type ServiceHealth struct {
	MinHealthy  *MinHealthy  `json:"minHealthy,omitempty"`
	SorryServer *SorryServer `json:"sorryServer,omitempty"`
}

// SorryServer is the real server added (weight 1) while none of a service's checked real servers is healthy.
type SorryServer struct {
	Address    string `json:"address"`
	Port       uint16 `json:"port"`
	Forwarding string `json:"forwarding"`
}

// MinHealthy is a count of real servers, or a percentage of the checked ones ("50%").
type MinHealthy struct {
	Count   int
	Percent int // used when IsPercent
	// IsPercent: the value was "NN%".
	IsPercent bool
}

// Of is the number of real servers to keep pooled out of total checked ones (a percentage rounds up, as PyBal's
// depool-threshold keeps at least that share).
func (m MinHealthy) Of(total int) int {
	if m.IsPercent {
		return (total*m.Percent + 99) / 100
	}
	return min(m.Count, total)
}

func (m MinHealthy) String() string {
	if m.IsPercent {
		return strconv.Itoa(m.Percent) + "%"
	}
	return strconv.Itoa(m.Count)
}

// MarshalJSON writes a count as a number and a percentage as "NN%", as given.
func (m MinHealthy) MarshalJSON() ([]byte, error) {
	if m.IsPercent {
		return json.Marshal(m.String())
	}
	return json.Marshal(m.Count)
}

// UnmarshalJSON reads a whole number or "NN%"; the ranges are checked by CheckServiceHealth.
func (m *MinHealthy) UnmarshalJSON(b []byte) error {
	var n json.Number
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return err
	}
	switch x := v.(type) {
	case json.Number:
		n = x
		i, err := strconv.Atoi(string(n))
		if err != nil {
			return fmt.Errorf("minHealthy %s must be a whole number of real servers or a percentage such as \"50%%\"", n)
		}
		*m = MinHealthy{Count: i}
	case string:
		p, ok := strings.CutSuffix(x, "%")
		i, err := strconv.Atoi(p)
		if !ok || err != nil || p != strings.TrimSpace(p) {
			return fmt.Errorf("minHealthy %q must be a whole number of real servers or a percentage such as \"50%%\"", x)
		}
		*m = MinHealthy{Percent: i, IsPercent: true}
	default:
		return fmt.Errorf("minHealthy must be a whole number of real servers or a percentage such as \"50%%\", not %s", b)
	}
	return nil
}

// The number fields of a check, in the ipvs.Range style (one wording of a refusal). Seconds may be fractional
// (milliseconds count); the provider's defaults are 5, 2, 2 and 3.
var (
	HealthPortRange     = ipvs.Range{Key: "healthCheck.port", What: "healthCheck.port", Min: 1, Max: 65535}
	HealthRiseRange     = ipvs.Range{Key: "healthCheck.rise", What: "healthCheck.rise", Min: 1, Max: 100}
	HealthFallRange     = ipvs.Range{Key: "healthCheck.fall", What: "healthCheck.fall", Min: 1, Max: 100}
	MinHealthyCount     = ipvs.Range{Key: "minHealthy", What: "minHealthy", Min: 0, Max: 65535}
	MinHealthyPercent   = ipvs.Range{Key: "minHealthy%", What: "minHealthy percentage", Min: 0, Max: 100}
	SorryPortRange      = ipvs.Range{Key: "sorryServer.port", What: "sorryServer.port", Min: 1, Max: 65535}
	healthIntervalLimit = [2]float64{1, 3600}
)

// Enum-like fields of a check.
var (
	HealthTypes      = []string{"tcp", "http", "https", "dns"}
	HealthOnFailures = []string{"quiesce", "remove"}
	HTTPMethods      = []string{"GET", "HEAD"}
	DNSTypes         = []string{"A", "AAAA", "SOA", "NS", "MX", "TXT", "SRV"}
	DNSTransports    = []string{"udp", "tcp"}
)

func oneOf(field, v string, words []string) *Error {
	for _, w := range words {
		if v == w {
			return nil
		}
	}
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = strconv.Quote(w)
	}
	return bad("%s %q must be %s or %s", field, v, strings.Join(q[:len(q)-1], ", "), q[len(q)-1])
}

func inRange(v int64, r ipvs.Range) *Error {
	if !r.In(v) {
		return bad("%s", r.Refusal(v))
	}
	return nil
}

// MaxHTTPField bounds the path, host and expectBody of a check (expectBody is sought in the first 64 KiB).
const MaxHTTPField = 1024

// CheckHealthCheck validates a complete check: every field present and in range, the part of its type given and
// the other part absent.
func CheckHealthCheck(c *HealthCheck) *Error {
	if e := oneOf("healthCheck.type", c.Type, HealthTypes); e != nil {
		return e
	}
	if e := inRange(int64(c.Port), HealthPortRange); e != nil {
		return e
	}
	if c.IntervalSeconds < healthIntervalLimit[0] || c.IntervalSeconds > healthIntervalLimit[1] || math.IsNaN(c.IntervalSeconds) {
		return bad("healthCheck.intervalSeconds %v must be %v..%v", c.IntervalSeconds, healthIntervalLimit[0], healthIntervalLimit[1])
	}
	if !(c.TimeoutSeconds >= 0.001) || c.TimeoutSeconds >= c.IntervalSeconds {
		return bad("healthCheck.timeoutSeconds %v must be at least 0.001 and less than intervalSeconds (%v)", c.TimeoutSeconds, c.IntervalSeconds)
	}
	if e := inRange(int64(c.Rise), HealthRiseRange); e != nil {
		return e
	}
	if e := inRange(int64(c.Fall), HealthFallRange); e != nil {
		return e
	}
	if e := oneOf("healthCheck.onFailure", c.OnFailure, HealthOnFailures); e != nil {
		return e
	}
	web := c.Type == "http" || c.Type == "https"
	switch {
	case web && c.HTTP == nil:
		return bad("healthCheck.http is required with type %q (path, method, expectStatus)", c.Type)
	case !web && c.HTTP != nil:
		return bad("healthCheck.http is only for type \"http\" or \"https\", not %q", c.Type)
	case c.Type == "dns" && c.DNS == nil:
		return bad("healthCheck.dns is required with type \"dns\" (name, type, transport)")
	case c.Type != "dns" && c.DNS != nil:
		return bad("healthCheck.dns is only for type \"dns\", not %q", c.Type)
	}
	if h := c.HTTP; h != nil {
		if !strings.HasPrefix(h.Path, "/") || len(h.Path) > MaxHTTPField || strings.ContainsAny(h.Path, " \r\n\t") {
			return bad("healthCheck.http.path %q must start with \"/\", hold no spaces or line breaks and be at most %d characters", h.Path, MaxHTTPField)
		}
		if e := oneOf("healthCheck.http.method", h.Method, HTTPMethods); e != nil {
			return e
		}
		if len(h.Host) > MaxHTTPField || strings.ContainsAny(h.Host, " \r\n\t/") {
			return bad("healthCheck.http.host %q must be a host name (no spaces, line breaks or \"/\"), at most %d characters", h.Host, MaxHTTPField)
		}
		if _, err := ParseStatusRanges(h.ExpectStatus); err != nil {
			return bad("healthCheck.http.expectStatus %q %v", h.ExpectStatus, err)
		}
		if len(h.ExpectBody) > MaxHTTPField {
			return bad("healthCheck.http.expectBody must be at most %d characters, not %d", MaxHTTPField, len(h.ExpectBody))
		}
		if h.ExpectBody != "" && h.Method == "HEAD" {
			return bad("healthCheck.http.expectBody needs method \"GET\": a HEAD response has no body")
		}
	}
	if d := c.DNS; d != nil {
		if d.Name == "" || len(d.Name) > 253 || strings.ContainsAny(d.Name, " \r\n\t") {
			return bad("healthCheck.dns.name %q must be a domain name of 1..253 characters", d.Name)
		}
		if e := oneOf("healthCheck.dns.type", d.Type, DNSTypes); e != nil {
			return e
		}
		if e := oneOf("healthCheck.dns.transport", d.Transport, DNSTransports); e != nil {
			return e
		}
	}
	return nil
}

// StatusRange is an inclusive range of HTTP status codes.
type StatusRange struct{ Lo, Hi int }

// ParseStatusRanges reads "200,301-302": codes and ranges of 100..599, separated by commas.
func ParseStatusRanges(s string) ([]StatusRange, error) {
	var out []StatusRange
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err1 := strconv.Atoi(lo)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || a < 100 || b > 599 || a > b {
			return nil, fmt.Errorf("must be status codes and ranges of 100..599 separated by commas, such as \"200,301-302\" (%q is not one)", part)
		}
		out = append(out, StatusRange{a, b})
	}
	return out, nil
}

// CheckServiceHealth validates a service's minHealthy and sorry server against its family.
func CheckServiceHealth(h *ServiceHealth, af uint16) *Error {
	if m := h.MinHealthy; m != nil {
		if m.IsPercent {
			if e := inRange(int64(m.Percent), MinHealthyPercent); e != nil {
				return e
			}
		} else if e := inRange(int64(m.Count), MinHealthyCount); e != nil {
			return e
		}
	}
	if s := h.SorryServer; s != nil {
		if _, e := parseAddr(s.Address, af, "sorryServer.address"); e != nil {
			return e
		}
		if e := inRange(int64(s.Port), SorryPortRange); e != nil {
			return e
		}
		if _, e := word(s.Forwarding, ipvs.Forwardings, "sorryServer.forwarding"); e != nil {
			return e
		}
	}
	return nil
}

// SorryDest is the sorry server as a kernel entry: weight 1, no thresholds.
func (s SorryServer) SorryDest() ipvs.Dest {
	a, _ := netip.ParseAddr(s.Address)
	f, _ := ipvs.Forwardings.Num(s.Forwarding)
	af := uint16(ipvs.AFInet)
	if a.Is6() {
		af = ipvs.AFInet6
	}
	return ipvs.Dest{DestKey: ipvs.DestKey{AF: af, Addr: a, Port: s.Port}, DestSettings: ipvs.DestSettings{Fwd: f, Weight: 1}}
}

// decodeHealth reads ensureDest's healthCheck and ensureService's minHealthy and sorryServer: absent keeps what the
// ledger records, null clears it, an object replaces it. They are recorded in the ledger, so they need an owner.
func decodeHealth(w *wireOp, op *Op) *Error {
	// A null field an op does not take passed readOp as absent (as every other field): it stays absent here.
	if w.Op != "ensureDest" {
		w.HealthCheck = nil
	}
	if w.Op != "ensureService" {
		w.MinHealthy, w.SorryServer = nil, nil
	}
	if w.HealthCheck == nil && w.MinHealthy == nil && w.SorryServer == nil {
		return nil
	}
	if w.Owner == nil {
		return bad("operation %s takes healthCheck, minHealthy and sorryServer only together with \"owner\" (the ledger records them for the checker)", w.Op)
	}
	if w.HealthCheck != nil {
		op.HealthCheck.Set = true
		if string(w.HealthCheck) == "null" {
			op.HealthCheck.Null = true
		} else {
			if err := strictUnmarshal(w.HealthCheck, &op.HealthCheck.Val); err != nil {
				return bad("healthCheck is malformed: %v", err)
			}
			if e := CheckHealthCheck(&op.HealthCheck.Val); e != nil {
				return e
			}
		}
	}
	if w.MinHealthy != nil {
		op.MinHealthy.Set = true
		if string(w.MinHealthy) == "null" {
			op.MinHealthy.Null = true
		} else if err := json.Unmarshal(w.MinHealthy, &op.MinHealthy.Val); err != nil {
			return bad("%v", err)
		}
	}
	if w.SorryServer != nil {
		op.SorryServer.Set = true
		if string(w.SorryServer) == "null" {
			op.SorryServer.Null = true
		} else if err := strictUnmarshal(w.SorryServer, &op.SorryServer.Val); err != nil {
			return bad("sorryServer is malformed: %v", err)
		}
	}
	h := ServiceHealth{}
	if op.MinHealthy.Set && !op.MinHealthy.Null {
		h.MinHealthy = &op.MinHealthy.Val
	}
	if op.SorryServer.Set && !op.SorryServer.Null {
		h.SorryServer = &op.SorryServer.Val
	}
	return CheckServiceHealth(&h, op.Service.AF)
}

// ServiceKeyOf reads a service identity as rendered (the checker's state file keeps them so).
func ServiceKeyOf(k ServiceKeyOut) (ipvs.ServiceKey, *Error) {
	b, err := json.Marshal(map[string]any{"op": "deleteService", "service": k})
	if err != nil {
		return ipvs.ServiceKey{}, bad("%v", err)
	}
	op, e := DecodeOp(b)
	if e != nil {
		return ipvs.ServiceKey{}, e
	}
	return op.Service, nil
}

// CheckerOut is dump's "checker", present when some stack declares a check: whether `ipvs-helper health` runs here
// (it holds its lock file while it runs), or why that could not be told.
type CheckerOut struct {
	Running bool   `json:"running"`
	Error   string `json:"error,omitempty"`
}

// DestHealthOut is what read-back adds for a checked real server: its health as the checker last recorded it and
// the declared weight (the ledger's), so that a server the checker depooled reads as declared.
type DestHealthOut struct {
	// State is "healthy", "unhealthy", or "unknown" (not probed yet, or no checker has run).
	State string `json:"state"`
	// Since is when it entered State (RFC 3339), "" when unknown.
	Since string `json:"since,omitempty"`
	// Last is the last probe's result: "ok" or why it failed.
	Last string `json:"last,omitempty"`
	// Depooled: the checker holds it out of the pool (weight 0, or removed: then Removed).
	Depooled bool `json:"depooled"`
	// Removed: onFailure "remove" took it out of the kernel; the entry shown is the declared one, without counters.
	Removed bool `json:"removed,omitempty"`
	// Kept: unhealthy, but kept pooled by minHealthy.
	Kept           bool   `json:"kept,omitempty"`
	DeclaredWeight uint32 `json:"declaredWeight"`
	Check          string `json:"check"`
}

// HealthVocabulary is what a health check accepts, as `ipvs-helper names` prints it under "health": the provider's
// tables are tested against it (test/unit/vocabulary.test.ts) instead of trusted to agree.
type HealthVocabulary struct {
	Types        []string     `json:"types"`
	OnFailure    []string     `json:"onFailure"`
	HTTPMethods  []string     `json:"httpMethods"`
	DNSTypes     []string     `json:"dnsTypes"`
	DNSTransport []string     `json:"dnsTransports"`
	Forwarding   []string     `json:"sorryForwarding"`
	Numbers      []ipvs.Range `json:"numbers"`
	Interval     [2]float64   `json:"intervalSeconds"`
	MaxHTTPField int          `json:"maxHttpField"`
}

// HealthNames returns the health check vocabulary.
func HealthNames() HealthVocabulary {
	return HealthVocabulary{
		Types: HealthTypes, OnFailure: HealthOnFailures, HTTPMethods: HTTPMethods, DNSTypes: DNSTypes, DNSTransport: DNSTransports,
		Forwarding:   ipvs.Forwardings.Words(),
		Numbers:      []ipvs.Range{HealthPortRange, HealthRiseRange, HealthFallRange, MinHealthyCount, MinHealthyPercent, SorryPortRange},
		Interval:     healthIntervalLimit,
		MaxHTTPField: MaxHTTPField,
	}
}
