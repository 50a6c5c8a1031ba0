package protocol

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
)

func TestDecodeEnsureService(t *testing.T) {
	op, e := DecodeOp(json.RawMessage(`{"op":"ensureService","onExisting":"fail","service":{"family":"ipv6","protocol":"udp","address":"2001:db8::1","port":53,
		"scheduler":"mh","schedulerFlags":["mh-port"],"persistence":{"timeout":60,"netmask":"64"},"persistenceEngine":"sip","onePacket":true}}`))
	if e != nil {
		t.Fatal(e)
	}
	want := ipvs.ServiceKey{AF: ipvs.AFInet6, Protocol: ipvs.ProtoUDP, Addr: netip.MustParseAddr("2001:db8::1"), Port: 53}
	if op.Service != want || op.OnExisting != ExistingFail || *op.ServiceChange.Scheduler != "mh" || !op.ServiceChange.HasFlags || *op.ServiceChange.PE != "sip" || !*op.ServiceChange.OnePacket {
		t.Errorf("%+v", op)
	}
	if p := op.ServiceChange.Persistence; !p.Set || p.Null || *p.Val.Timeout != 60 || *p.Val.Netmask != 64 {
		t.Errorf("persistence %+v", p)
	}
	// null persistence is "not persistent", absent is "keep".
	op, _ = DecodeOp(json.RawMessage(`{"op":"ensureService","service":{"family":"ipv4","fwmark":9,"persistence":null}}`))
	if !op.ServiceChange.Persistence.Set || !op.ServiceChange.Persistence.Null || op.Service.FWMark != 9 {
		t.Errorf("null persistence %+v", op.ServiceChange.Persistence)
	}
	op, _ = DecodeOp(json.RawMessage(`{"op":"ensureService","service":{"family":"ipv4","fwmark":9}}`))
	if op.ServiceChange.Persistence.Set {
		t.Error("absent persistence must stay unset")
	}
}

func TestDecodeOnExisting(t *testing.T) {
	for in, want := range map[string]OnExisting{"": ExistingUpdate, `,"onExisting":"update"`: ExistingUpdate,
		`,"onExisting":"fail"`: ExistingFail, `,"onExisting":"match"`: ExistingMatch} {
		op, e := DecodeOp(json.RawMessage(`{"op":"ensureDest","service":{"family":"ipv4","fwmark":1},"dest":{"address":"10.0.0.1"}` + in + `}`))
		if e != nil || op.OnExisting != want {
			t.Errorf("%q: %v %v, want %v", in, op, e, want)
		}
	}
}

func TestDecodeEnsureDest(t *testing.T) {
	op, e := DecodeOp(json.RawMessage(`{"op":"ensureDest","service":{"family":"ipv4","fwmark":1},
		"dest":{"address":"2001:db8::5","forwarding":"tunnel","weight":0,"upperThreshold":5,"tunnel":{"type":"gue","port":6080,"checksum":"remcsum"}}}`))
	if e != nil {
		t.Fatal(e)
	}
	if op.Dest.AF != ipvs.AFInet6 || op.DestPort || *op.DestChange.Weight != 0 || *op.DestChange.UThresh != 5 || op.DestChange.LThresh != nil || *op.DestChange.Fwd != ipvs.FwdTunnel {
		t.Errorf("%+v", op)
	}
}

func TestDecodeRejects(t *testing.T) {
	for in, want := range map[string]string{
		`[]`:                  "is malformed",
		`{"op":"frobnicate"}`: "unknown operation \"frobnicate\"",
		`{"op":"dump","x":1}`: "unknown field",
		`{"op":"dump","service":{"family":"ipv4","fwmark":1}}`:                                                               "does not take field \"service\"",
		`{"op":"deleteService"}`:                                                                                             "needs field \"service\"",
		`{"op":"deleteService","service":{"family":"ipv4","fwmark":1,"scheduler":"rr"}}`:                                     "takes only the service identity",
		`{"op":"ensureService","service":{"family":"ipv5","fwmark":1}}`:                                                      "family \"ipv5\"",
		`{"op":"ensureService","service":{"family":"ipv4","fwmark":0}}`:                                                      "fwmark 0 must be 1..4294967295",
		`{"op":"ensureService","service":{"family":"ipv4","fwmark":1,"port":80}}`:                                            "fwmark service has no protocol",
		`{"op":"ensureService","service":{"family":"ipv4","protocol":"icmp","address":"10.0.0.1","port":1}}`:                 "protocol \"icmp\"",
		`{"op":"ensureService","service":{"family":"ipv4","protocol":"tcp","address":"10.0.0.1","port":65536}}`:              "service port 65536 must be 0..65535",
		`{"op":"ensureService","service":{"family":"ipv6","protocol":"tcp","address":"10.0.0.1","port":1}}`:                  "is not an ipv6 address",
		`{"op":"ensureService","service":{"family":"ipv4","fwmark":1,"persistence":{"timeout":0}}}`:                          "persistence timeout 0",
		`{"op":"ensureService","service":{"family":"ipv4","fwmark":1,"persistence":{"netmask":"64"}}}`:                       "dotted mask",
		`{"op":"ensureService","service":{"family":"ipv4","fwmark":1},"onExisting":"ignore"}`:                                "onExisting \"ignore\" must be \"update\", \"fail\" or \"match\"",
		`{"op":"ensureDest","service":{"family":"ipv4","fwmark":1},"dest":{"address":"x"}}`:                                  "is not an IP address",
		`{"op":"ensureDest","service":{"family":"ipv4","fwmark":1},"dest":{"address":"10.0.0.1","forwarding":"bypass"}}`:     "forwarding \"bypass\"",
		`{"op":"ensureDest","service":{"family":"ipv4","fwmark":1},"dest":{"address":"10.0.0.1","weight":65536}}`:            "weight 65536",
		`{"op":"ensureDest","service":{"family":"ipv4","fwmark":1},"dest":{"address":"10.0.0.1","lowerThreshold":-1}}`:       "lower threshold -1",
		`{"op":"ensureDest","service":{"family":"ipv4","fwmark":1},"dest":{"address":"10.0.0.1","tunnel":{"type":"vxlan"}}}`: "tunnel type \"vxlan\"",
		`{"op":"deleteDest","service":{"family":"ipv4","fwmark":1},"dest":{"address":"10.0.0.1","weight":1}}`:                "takes only the real server identity",
		`{"op":"setTimeouts","tcp":-5}`:                                                           "tcp timeout -5",
		`{"op":"ensureDaemon","daemon":{"state":"slave","interface":"eth0"}}`:                     "state \"slave\"",
		`{"op":"ensureDaemon","daemon":{"state":"master","interface":"eth0","syncId":256}}`:       "syncid 256",
		`{"op":"ensureDaemon","daemon":{"state":"master","interface":"eth0","group":"10.0.0.1"}}`: "not a multicast address",
		`{"op":"ensureDaemon","daemon":{"state":"master","interface":""}}`:                        "interface name",
	} {
		_, e := DecodeOp(json.RawMessage(in))
		if e == nil || e.Code != CodeBadRequest || !strings.Contains(e.Message, want) {
			t.Errorf("%s:\n got %v\nwant %q", in, e, want)
		}
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add(`{"v":1,"ops":[{"op":"ensureService","service":{"family":"ipv4","protocol":"tcp","address":"10.0.0.1","port":80,"scheduler":"rr"}}]}`)
	f.Add(`{"v":1,"ops":[{"op":"ensureDest","service":{"family":"ipv6","fwmark":3},"dest":{"address":"10.0.0.1","tunnel":{"type":"gue","port":1}}}]}`)
	f.Add(`{"v":1,"ops":[{"op":"ensureDaemon","daemon":{"state":"backup","interface":"eth0","group":"ff02::1"}},{"op":"zero"}]}`)
	f.Fuzz(func(t *testing.T, doc string) {
		var req Request
		if json.Unmarshal([]byte(doc), &req) != nil {
			return
		}
		for _, raw := range req.Ops {
			op, e := DecodeOp(raw)
			if (op == nil) == (e == nil) {
				t.Fatalf("exactly one of op and error: %v %v", op, e)
			}
			if e != nil {
				if e.Code != CodeBadRequest || e.Message == "" {
					t.Fatalf("bad error %+v", e)
				}
				continue
			}
			// Every accepted address matches its family, every accepted service is well-formed.
			if op.Service.AF != 0 && !op.Service.IsFWMark() && op.Service.Addr.Is4() != (op.Service.AF == ipvs.AFInet) {
				t.Fatalf("family mismatch accepted: %+v", op.Service)
			}
		}
	})
}

func TestDecodeHolder(t *testing.T) {
	dest := `{"op":"%s","service":{"family":"ipv4","fwmark":1},"dest":{"address":"10.0.0.1"}%s}`
	urn := "urn:pulumi:prod::lb::pulumi-nodejs:dynamic/ipvs:RealServerPool::web"
	for _, name := range []string{"ensureDest", "deleteDest"} {
		op, e := DecodeOp(json.RawMessage(fmt.Sprintf(dest, name, `,"owner":"acme/lb/prod","holder":"`+urn+`"`)))
		if e != nil || op.Holder != urn {
			t.Errorf("%s: %v %+v", name, e, op)
		}
		op, e = DecodeOp(json.RawMessage(fmt.Sprintf(dest, name, `,"owner":"acme/lb/prod","holder":"`+urn+`","formerHolder":"urn:old"`)))
		if e != nil || op.Holder != urn || op.FormerHolder != "urn:old" {
			t.Errorf("%s with formerHolder: %v %+v", name, e, op)
		}
	}
	for what, c := range map[string]struct{ op, fields, want string }{
		"without owner":               {"ensureDest", `,"holder":"x"`, `only together with "owner"`},
		"on a service":                {"deleteService", `,"owner":"acme/lb/prod","holder":"x"`, `does not take field "holder"`},
		"empty":                       {"deleteDest", `,"owner":"acme/lb/prod","holder":""`, "1..1024 characters"},
		"control chars":               {"ensureDest", `,"owner":"acme/lb/prod","holder":"a\nb"`, "control characters"},
		"formerHolder without holder": {"ensureDest", `,"owner":"acme/lb/prod","formerHolder":"x"`, `only together with "holder"`},
		"formerHolder is holder":      {"deleteDest", `,"owner":"acme/lb/prod","holder":"x","formerHolder":"x"`, "is the holder itself"},
		"formerHolder on a service":   {"deleteService", `,"owner":"acme/lb/prod","formerHolder":"x"`, `does not take field "formerHolder"`},
		"formerHolder without owner":  {"deleteDest", `,"holder":"x","formerHolder":"y"`, `only together with "owner"`},
		"formerHolder control chars":  {"ensureDest", `,"owner":"acme/lb/prod","holder":"x","formerHolder":"a\tb"`, "formerHolder"},
	} {
		raw := fmt.Sprintf(dest, c.op, c.fields)
		if c.op == "deleteService" {
			raw = `{"op":"deleteService","service":{"family":"ipv4","fwmark":1}` + c.fields + `}`
		}
		_, e := DecodeOp(json.RawMessage(raw))
		if e == nil || e.Code != CodeBadRequest || !strings.Contains(e.Message, c.want) {
			t.Errorf("%s: %v, want BAD_REQUEST %q", what, e, c.want)
		}
	}
}

// With several owner-only fields and no owner, the refusal names the first in wireOp's order, every time.
func TestDecodeOwnerOnlyFieldsNamedInOrder(t *testing.T) {
	for what, c := range map[string]struct{ raw, want string }{
		"formerOwner and takeover": {`{"op":"ensureService","service":{"family":"ipv4","fwmark":1},"takeover":true,"formerOwner":"acme/lb/old"}`,
			`operation ensureService takes field "formerOwner" only together with "owner"`},
		"holder and formerHolder": {`{"op":"deleteDest","service":{"family":"ipv4","fwmark":1},"dest":{"address":"10.0.0.1"},"formerHolder":"y","holder":"x"}`,
			`operation deleteDest takes field "holder" only together with "owner"`},
	} {
		for i := 0; i < 50; i++ { // a map's order would name either field, differing between runs
			_, e := DecodeOp(json.RawMessage(c.raw))
			if e == nil || e.Code != CodeBadRequest || e.Message != c.want {
				t.Fatalf("%s (try %d): %v, want BAD_REQUEST %q", what, i, e, c.want)
			}
		}
	}
}

// Several fields an op does not take: the refusal names the first in wireOp's order, the same on every run.
func TestDecodeMisplacedFieldsNamedInOrder(t *testing.T) {
	raw := `{"op":"getService","service":{"family":"ipv4","fwmark":1},"sysctls":[],"dryRun":true,"tcp":5,"host":{}}`
	want := `operation getService does not take field "tcp"`
	for i := 0; i < 50; i++ { // a map's order would name any of the four, differing between runs
		if _, e := DecodeOp(json.RawMessage(raw)); e == nil || e.Code != CodeBadRequest || e.Message != want {
			t.Fatalf("try %d: %v, want BAD_REQUEST %q", i, e, want)
		}
	}
}

func TestDecodeFormerOwnerOfSettings(t *testing.T) {
	ensure := `{"op":"ensureSettings","settings":{"sysctls":{"net.ipv4.vs.conntrack":1}}%s}`
	op, e := DecodeOp(json.RawMessage(fmt.Sprintf(ensure, `,"owner":"acme/lb/production","formerOwner":"acme/lb/prod"`)))
	if e != nil || op.Owner != "acme/lb/production" || op.FormerOwner != "acme/lb/prod" {
		t.Errorf("ensureSettings with formerOwner: %v %+v", e, op)
	}
	for what, c := range map[string]struct{ raw, want string }{
		"without owner":     {fmt.Sprintf(ensure, `,"formerOwner":"acme/lb/prod"`), `needs field "owner"`},
		"the owner itself":  {fmt.Sprintf(ensure, `,"owner":"acme/lb/prod","formerOwner":"acme/lb/prod"`), "is the owner itself"},
		"not a stack":       {fmt.Sprintf(ensure, `,"owner":"acme/lb/prod","formerOwner":"acme/lb"`), `formerOwner "acme/lb" must be "organization/project/stack"`},
		"empty":             {fmt.Sprintf(ensure, `,"owner":"acme/lb/prod","formerOwner":""`), `formerOwner "" must be`},
		"on deleteSettings": {`{"op":"deleteSettings","owner":"acme/lb/prod","formerOwner":"acme/lb/old"}`, `does not take field "formerOwner"`},
		"on getSettings":    {`{"op":"getSettings","formerOwner":"acme/lb/old"}`, `does not take field "formerOwner"`},
	} {
		_, e := DecodeOp(json.RawMessage(c.raw))
		if e == nil || e.Code != CodeBadRequest || !strings.Contains(e.Message, c.want) {
			t.Errorf("%s: %v, want BAD_REQUEST %q", what, e, c.want)
		}
	}
}

// Every range the decoder checks, with its whole message: the message and the check read the same row of
// ipvs/fields.go, so a row given the wrong field name or bounds shows here.
func TestDecodeRangeMessages(t *testing.T) {
	svc := `"service":{"family":"ipv4","protocol":"tcp","address":"10.0.0.1","port":80}`
	ensureService := func(field string) string {
		return `{"op":"ensureService","service":{"family":"ipv4","protocol":"tcp","address":"10.0.0.1","port":80,` + field + `}}`
	}
	ensureDest := func(field string) string {
		return `{"op":"ensureDest",` + svc + `,"dest":{"address":"10.0.0.2",` + field + `}}`
	}
	daemon := func(field string) string {
		return `{"op":"ensureDaemon","daemon":{"state":"master","interface":"eth0",` + field + `}}`
	}
	for in, want := range map[string]string{
		`{"op":"zero","service":{"family":"ipv4","fwmark":4294967296}}`:                             "fwmark 4294967296 must be 1..4294967295",
		`{"op":"zero","service":{"family":"ipv4","protocol":"tcp","address":"10.0.0.1","port":-1}}`: "service port -1 must be 0..65535",
		ensureService(`"persistence":{"timeout":0}`):                                                "persistence timeout 0 must be 1..2678400",
		ensureService(`"persistence":{"timeout":2678401}`):                                          "persistence timeout 2678401 must be 1..2678400",
		ensureDest(`"port":65536`):                                                                  "real server port 65536 must be 0..65535",
		ensureDest(`"weight":65536`):                                                                "weight 65536 must be 0..65535",
		ensureDest(`"weight":-1`):                                                                   "weight -1 must be 0..65535",
		ensureDest(`"upperThreshold":2147483648`):                                                   "upper threshold 2147483648 must be 0..2147483647",
		ensureDest(`"lowerThreshold":-1`):                                                           "lower threshold -1 must be 0..2147483647",
		ensureDest(`"forwarding":"tunnel","tunnel":{"type":"gue","port":65536}`):                    "tunnel port 65536 must be 0..65535",
		`{"op":"setTimeouts","tcp":2147483648}`:                                                     "tcp timeout 2147483648 must be 0..2147483647",
		`{"op":"setTimeouts","tcpfin":-1}`:                                                          "tcpfin timeout -1 must be 0..2147483647",
		`{"op":"setTimeouts","udp":2147483648}`:                                                     "udp timeout 2147483648 must be 0..2147483647",
		daemon(`"syncId":256`):                                                                      "syncid 256 must be 0..255",
		daemon(`"maxLen":0`):                                                                        "maxlen 0 must be 1..65507",
		daemon(`"port":0`):                                                                          "sync port 0 must be 1..65535",
		daemon(`"ttl":256`):                                                                         "sync ttl 256 must be 1..255",
		`{"op":"ensureSettings","owner":"acme/lb/prod","settings":{"timeouts":{"udp":-1}}}`:         "udp timeout -1 must be 0..2147483647",
	} {
		_, e := DecodeOp(json.RawMessage(in))
		if e == nil || e.Code != CodeBadRequest || e.Message != want {
			t.Errorf("%s:\n got %v\nwant %s", in, e, want)
		}
	}
}
