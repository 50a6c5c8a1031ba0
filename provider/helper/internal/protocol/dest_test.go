package protocol

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
)

// The ledger records a real server as DestSpecJSON renders it and the checker restores it through DestOf: every
// setting must survive the trip. The samples vary every field of ipvs.DestSettings, so a field added there without
// being carried both ways fails here.
func TestDestSpecRoundTrip(t *testing.T) {
	k := ipvs.DestKey{AF: ipvs.AFInet, Addr: netip.MustParseAddr("10.10.0.12"), Port: 80}
	var samples []ipvs.DestSettings
	for _, f := range []uint32{ipvs.FwdMasq, ipvs.FwdRoute} {
		samples = append(samples, ipvs.DestSettings{Fwd: f, Weight: 5, UThresh: 100, LThresh: 10})
	}
	for i, tt := range []ipvs.Tunnel{
		{TunType: ipvs.TunIPIP},
		{TunType: ipvs.TunGUE, TunPort: 6080, TunFlags: ipvs.TunCsum},
		{TunType: ipvs.TunGUE, TunPort: 5555, TunFlags: ipvs.TunRemCsum},
		{TunType: ipvs.TunGRE, TunFlags: ipvs.TunCsum},
	} {
		samples = append(samples, ipvs.DestSettings{Fwd: ipvs.FwdTunnel, Weight: uint32(65535 - i), UThresh: uint32(i), LThresh: uint32(2 * i), Tunnel: tt})
	}
	for _, s := range samples {
		d := ipvs.Dest{DestKey: k, DestSettings: s}
		got, err := DestOf(k, DestSpecJSON(d))
		if err != nil {
			t.Fatalf("%+v: %v", s, err)
		}
		if got.DestSettings != s {
			t.Errorf("round trip of %+v gave %+v", s, got.DestSettings)
		}
	}
	for _, name := range settingsFields(reflect.TypeOf(ipvs.DestSettings{})) {
		seen := map[any]bool{}
		for _, s := range samples {
			seen[reflect.ValueOf(s).FieldByName(name).Interface()] = true
		}
		if len(seen) < 2 {
			t.Errorf("no sample varies DestSettings.%s: add one, and carry the field in DestSpecJSON and DestOf", name)
		}
	}
}

// settingsFields lists a struct's fields, those of embedded structs flattened.
func settingsFields(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			names = append(names, settingsFields(f.Type)...)
		} else {
			names = append(names, f.Name)
		}
	}
	return names
}
