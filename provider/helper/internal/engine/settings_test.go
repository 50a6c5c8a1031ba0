package engine

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/sysctl"
)

// writeLog records every settings write the engine makes, sysctls and kernel calls alike.
type writeLog struct{ writes []string }

type loggedSysctls struct {
	sysctl.FS
	log *writeLog
}

func (s loggedSysctls) Write(name string, v sysctl.Value) error {
	s.log.writes = append(s.log.writes, name+"="+v.Text())
	return s.FS.Write(name, v)
}

type loggedKernel struct {
	*settingsKernel
	log *writeLog
}

func (k loggedKernel) SetTimeouts(t ipvs.Timeouts) error {
	k.log.writes = append(k.log.writes, fmt.Sprintf("timeouts %+v", t))
	return k.settingsKernel.SetTimeouts(t)
}
func (k loggedKernel) NewDaemon(d ipvs.Daemon) error {
	k.log.writes = append(k.log.writes, "start "+ipvs.DaemonStateName(d.State))
	return k.settingsKernel.NewDaemon(d)
}
func (k loggedKernel) DelDaemon(state uint32) error {
	k.log.writes = append(k.log.writes, "stop "+ipvs.DaemonStateName(state))
	return k.settingsKernel.DelDaemon(state)
}

// ledgerSettings is the settings record of each stack as the ledger on disk holds it.
func ledgerSettings(t *testing.T, owners ...string) []*ledger.SettingsRecord {
	t.Helper()
	l, err := ledger.Open(time.Now().Add(time.Second), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	out := make([]*ledger.SettingsRecord, len(owners))
	for i, o := range owners {
		out[i] = l.Settings(o)
	}
	return out
}

// show is a record as its JSON, "none" when there is none.
func show(s *ledger.SettingsRecord) string {
	if s == nil {
		return "none"
	}
	return string(s.Applied) + " (original " + string(s.Original) + ")"
}

func withFormer(op, former string) string { return as(op, fmt.Sprintf(`"formerOwner":%q`, former)) }

// A renamed stack (formerOwner) takes the settings record along as it is: nothing is written back to its original or
// restarted, the originals stay for the new owner's deleteSettings.
func TestRenamedStackKeepsItsSettings(t *testing.T) {
	k, e, sys := newSettingsEngine(t)
	log := &writeLog{}
	e.k, e.Sysctl = loggedKernel{k, log}, loggedSysctls{e.Sysctl, log}
	set := `{"sysctls":{"net.ipv4.vs.conntrack":1,"net.ipv4.vs.sync_threshold":[4,60]},"timeouts":{"udp":60},
		"daemons":[{"state":"master","interface":"eth0","syncId":7}]}`
	wantCode(t, "ensure as A", run(t, e, ensureSettings(stackA, set))[0], "ok")
	before := ledgerSettings(t, stackA)[0]
	if before == nil {
		t.Fatal("no record for stack A")
	}

	log.writes = nil
	res := run(t, e, withFormer(ensureSettings(stackC, set), stackA))
	wantCode(t, "ensure as C from A", res[0], "ok")
	if len(log.writes) != 0 || res[0]["changed"] != false {
		t.Errorf("moving the settings wrote %v (changed %v), want nothing", log.writes, res[0]["changed"])
	}
	recs := ledgerSettings(t, stackA, stackC)
	if recs[0] != nil || recs[1] == nil || !bytes.Equal(recs[1].Original, before.Original) || !bytes.Equal(recs[1].Applied, before.Applied) {
		t.Fatalf("after the move: A %s, C %s, want C to hold %s", show(recs[0]), show(recs[1]), show(before))
	}
	if got := run(t, e, `{"op":"getSettings"}`)[0]; got["owner"] != stackC {
		t.Errorf("getSettings owner %v, want %s", got["owner"], stackC)
	}
	// The former owner is not a holder any more: its delete changes nothing.
	if res := run(t, e, `{"op":"deleteSettings",`+owner(stackA)+`}`)[0]; code(res) != "ok" || res["changed"] != false || len(log.writes) != 0 {
		t.Errorf("deleteSettings as the former owner: %v, writes %v", res, log.writes)
	}

	res = run(t, e, `{"op":"deleteSettings",`+owner(stackC)+`}`)
	wantCode(t, "delete as C", res[0], "ok")
	if readSys(t, sys, "net.ipv4.vs.conntrack") != "0" || readSys(t, sys, "net.ipv4.vs.sync_threshold") != "3 50" ||
		k.timeouts != (ipvs.Timeouts{TCP: 900, TCPFin: 120, UDP: 300}) || len(k.daemons) != 0 {
		t.Errorf("after deleteSettings as C: timeouts %v, daemons %v", k.timeouts, k.daemons)
	}
}

// The ensure after the move proceeds as usual (items dropped go back to the originals the former owner recorded);
// a formerOwner that does not hold the settings is judged as without it; a failed ensure leaves the record with the
// former owner, whom the caller's state still names.
func TestFormerOwnerOfSettings(t *testing.T) {
	k, e, sys := newSettingsEngine(t)
	wantCode(t, "ensure as A", run(t, e, ensureSettings(stackA, `{"sysctls":{"net.ipv4.vs.conntrack":1,"net.ipv4.ip_forward":1}}`))[0], "ok")

	wantCode(t, "formerOwner of another stack", run(t, e, withFormer(ensureSettings(stackC, `{"sysctls":{"net.ipv4.vs.conntrack":1}}`), stackB))[0],
		protocol.CodeOwned, stackA)
	wantCode(t, "failed move", run(t, e, withFormer(ensureSettings(stackC, `{"sysctls":{"net.ipv4.vs.sloppy_tcp":1}}`), stackA))[0],
		protocol.CodeUnsupported, "net.ipv4.vs.sloppy_tcp")
	if recs := ledgerSettings(t, stackA, stackC); recs[0] == nil || recs[1] != nil {
		t.Fatalf("after a failed move: A %s, C %s, want A to keep it", show(recs[0]), show(recs[1]))
	}

	wantCode(t, "move and drop", run(t, e, withFormer(ensureSettings(stackC, `{"sysctls":{"net.ipv4.vs.conntrack":1},"timeouts":{"tcp":600}}`), stackA))[0], "ok")
	if readSys(t, sys, "net.ipv4.ip_forward") != "0" || readSys(t, sys, "net.ipv4.vs.conntrack") != "1" || k.timeouts.TCP != 600 {
		t.Fatalf("after move and drop: ip_forward %s, timeouts %v", readSys(t, sys, "net.ipv4.ip_forward"), k.timeouts)
	}
	wantCode(t, "delete as C", run(t, e, `{"op":"deleteSettings",`+owner(stackC)+`}`)[0], "ok")
	if readSys(t, sys, "net.ipv4.vs.conntrack") != "0" || k.timeouts.TCP != 900 {
		t.Fatalf("after delete as C: timeouts %v", k.timeouts)
	}

	// Nobody holds them: an ordinary first ensure, recording the kernel's values as originals.
	wantCode(t, "formerOwner, no holder", run(t, e, withFormer(ensureSettings(stackC, `{"sysctls":{"net.ipv4.vs.conntrack":1}}`), stackA))[0], "ok")
	if recs := ledgerSettings(t, stackA, stackC); recs[0] != nil || recs[1] == nil || !bytes.Contains(recs[1].Original, []byte(`{"net.ipv4.vs.conntrack":0}`)) {
		t.Errorf("first ensure with formerOwner: A %s, C %s", show(recs[0]), show(recs[1]))
	}
}
