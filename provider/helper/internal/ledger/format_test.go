package ledger_test

import (
	"encoding/json"
	"net/netip"
	"os"
	"reflect"
	"testing"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger/ledgertest"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// A record holds the protocol's read-back types (ServiceSpecOut, DestSpecOut, HealthCheck…), so a field added to
// them would enter the stack file unseen. This pins the file, byte for byte, for records that set every field: a new
// field fails here until it is set below and the file is accepted again — with FileVersion raised when an older
// helper could not read it (DisallowUnknownFields).
func TestStackFileFormat(t *testing.T) {
	ledgertest.Use(t)
	svc := protocol.ServiceSpecOut{
		ServiceKeyOut: protocol.ServiceKeyJSON(key),
		Scheduler:     "sh", SchedulerFlags: []string{"sh-port"}, Persistence: &protocol.PersistenceOut{Timeout: 300, Netmask: "255.255.255.0"},
		PersistenceEngine: "sip", OnePacket: true, BindAddress: &protocol.Binding{Interface: "ipvs0", Dummy: true, Added: true},
	}
	health := &protocol.ServiceHealth{MinHealthy: &protocol.MinHealthy{Percent: 50, IsPercent: true},
		SorryServer: &protocol.SorryServer{Address: "10.0.0.9", Port: 80, Forwarding: "masq"}}
	dest := protocol.DestSpecOut{Address: "10.0.0.1", Port: 8443, Forwarding: "tunnel", Weight: 5, UpperThreshold: 100,
		LowerThreshold: 10, Tunnel: &protocol.TunnelOut{Type: "gue", Port: 6080, Checksum: "remcsum"}}
	httpCheck := &protocol.HealthCheck{Type: "http", Port: 8080, IntervalSeconds: 2, TimeoutSeconds: 1.5, Rise: 2, Fall: 3,
		HTTP:      &protocol.HTTPCheck{Path: "/healthz", Method: "GET", Host: "example.org", ExpectStatus: "200", ExpectBody: "ok"},
		OnFailure: "remove"}
	dnsCheck := &protocol.HealthCheck{Type: "dns", Port: 53, IntervalSeconds: 1, TimeoutSeconds: 1, Rise: 1, Fall: 1,
		DNS: &protocol.DNSCheck{Name: "example.org", Type: "A", Transport: "udp"}, OnFailure: "quiesce"}
	markKey := ipvs.ServiceKey{AF: ipvs.AFInet, FWMark: 7}
	marked := protocol.ServiceJSON(ipvs.Service{ServiceKey: markKey, ServiceSettings: ipvs.DefaultService(ipvs.AFInet)}, nil).ServiceSpecOut
	settings := &ledger.SettingsRecord{Applied: json.RawMessage(`{"timeouts":{"udp":60}}`), Original: json.RawMessage(`{"timeouts":{"udp":300}}`)}
	k2, d2 := rs(2)
	reopen(t, nil, func(l *ledger.Ledger) {
		l.PutService(stack, key, svc)
		l.SetServiceHealth(stack, key, health)
		l.PutService(stack, markKey, marked)
		k1 := ipvs.DestKey{AF: ipvs.AFInet, Addr: netip.MustParseAddr(dest.Address), Port: dest.Port}
		l.PutDest(stack, "urn:pulumi:prod::lb::pulumi-ipvs:index:RealServer::web", key, k1, dest)
		l.SetDestCheck(stack, key, k1, httpCheck)
		l.PutDest(stack, "", key, k2, d2)
		l.SetDestCheck(stack, key, k2, dnsCheck)
		l.SetSettings(stack, settings)
	})
	unset := map[string]bool{}
	for _, v := range []any{svc, marked, health, dest, httpCheck, dnsCheck, settings} {
		markSet(reflect.ValueOf(v), unset)
	}
	delete(unset, "Binding.Present") // read-back only: never recorded
	for field, isUnset := range unset {
		if isUnset {
			t.Errorf("%s is set in no record here: set it, and accept the file it makes", field)
		}
	}
	b, err := os.ReadFile(stackPath())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"v":3,"owner":"acme/lb/prod",
"services":[
{"service":{"family":"ipv4","protocol":"tcp","address":"192.0.2.1","port":80,"scheduler":"sh","schedulerFlags":["sh-port"],"persistence":{"timeout":300,"netmask":"255.255.255.0"},"persistenceEngine":"sip","onePacket":true,"bindAddress":{"interface":"ipvs0","dummy":true,"added":true}},"health":{"minHealthy":"50%","sorryServer":{"address":"10.0.0.9","port":80,"forwarding":"masq"}}},
{"service":{"family":"ipv4","fwmark":7,"scheduler":"wlc","schedulerFlags":[],"persistence":null,"persistenceEngine":"","onePacket":false}}
],
"dests":[
{"service":{"family":"ipv4","protocol":"tcp","address":"192.0.2.1","port":80},"dest":{"address":"10.0.0.1","port":8443,"forwarding":"tunnel","weight":5,"upperThreshold":100,"lowerThreshold":10,"tunnel":{"type":"gue","port":6080,"checksum":"remcsum"}},"holder":"urn:pulumi:prod::lb::pulumi-ipvs:index:RealServer::web","healthCheck":{"type":"http","port":8080,"intervalSeconds":2,"timeoutSeconds":1.5,"rise":2,"fall":3,"http":{"path":"/healthz","method":"GET","host":"example.org","expectStatus":"200","expectBody":"ok"},"onFailure":"remove"}},
{"service":{"family":"ipv4","protocol":"tcp","address":"192.0.2.1","port":80},"dest":{"address":"10.0.0.2","port":8080,"forwarding":"nat","weight":1,"upperThreshold":0,"lowerThreshold":0,"tunnel":null},"healthCheck":{"type":"dns","port":53,"intervalSeconds":1,"timeoutSeconds":1,"rise":1,"fall":1,"dns":{"name":"example.org","type":"A","transport":"udp"},"onFailure":"quiesce"}}
],
"settings":{"applied":{"timeouts":{"udp":60}},"original":{"timeouts":{"udp":300}}}}
`
	if string(b) != want {
		t.Errorf("the stack file changed:\n%s\nwant:\n%s", b, want)
	}
	// Every field is read back: a fresh load rewrites the same file.
	if again, err := ledger.FreshEncodeForTest(stack); err != nil || string(again) != want {
		t.Errorf("the file read back and rewritten (%v):\n%s", err, again)
	}
}

// markSet records, for each JSON field of the structs v reaches, whether some value seen so far sets it
// ("Type.Field" → still unset).
func markSet(v reflect.Value, unset map[string]bool) {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return
	}
	for i := 0; i < v.NumField(); i++ {
		f, sf := v.Field(i), v.Type().Field(i)
		if sf.Anonymous {
			markSet(f, unset)
			continue
		}
		if sf.Tag.Get("json") == "" {
			continue
		}
		name := v.Type().Name() + "." + sf.Name
		if _, seen := unset[name]; !seen {
			unset[name] = true
		}
		if !f.IsZero() {
			unset[name] = false
		}
		markSet(f, unset)
	}
}
