package engine

import (
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// mergeService applies the given settings over cur (nil = a new service, starting from ipvsadm's defaults).
// The result is the complete entry a NEW or SET must carry; its counters are not part of it.
func mergeService(cur *ipvs.Service, key ipvs.ServiceKey, set protocol.ServiceChange) (ipvs.Service, error) {
	s := ipvs.Service{ServiceKey: key, ServiceSettings: ipvs.DefaultService(key.AF)}
	if cur != nil {
		s = ipvs.Service{ServiceKey: cur.ServiceKey, ServiceSettings: cur.ServiceSettings}
	}
	err := set.Apply(&s)
	return s, err
}

// mergeDest applies the given settings over cur (nil = a new dest: dr, weight 1, no thresholds, as ipvsadm).
func mergeDest(cur *ipvs.Dest, key ipvs.DestKey, set protocol.DestChange) (ipvs.Dest, error) {
	d := ipvs.Dest{DestKey: key, DestSettings: ipvs.DefaultDest}
	if cur != nil {
		d = ipvs.Dest{DestKey: cur.DestKey, DestSettings: cur.DestSettings}
	}
	err := set.Apply(&d)
	return d, err
}
