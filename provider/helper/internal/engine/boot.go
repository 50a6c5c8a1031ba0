package engine

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/savefmt"
)

// What the boot unit runs after a reboot (Boot: every stack's entries and settings; BootHosts: the prepared real
// server hosts), whether the unit is wanted at all, and the ledger as an operator reads it (`ipvs-helper owners`).

// bootOps are the ops that restore the ledger: every stack's settings, then services, then real servers, each an
// ensure with onExisting "update" under its owner (never a delete: nothing unowned is touched).
func bootOps(stacks []*ledger.Stack) []json.RawMessage {
	var settings, services, dests []json.RawMessage
	op := func(v map[string]any) json.RawMessage {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err) // records are plain structs
		}
		return b
	}
	for _, s := range stacks {
		if s.Settings != nil {
			settings = append(settings, op(map[string]any{"op": "ensureSettings", "owner": s.Owner, "settings": s.Settings.Applied}))
		}
		for _, svc := range s.ServiceList() {
			// The binding is an op field, not a service field; the ensure puts the address back before the entry.
			o := map[string]any{"op": "ensureService", "owner": s.Owner, "service": svc}
			if svc.BindAddress != nil {
				o["bindAddress"] = svc.BindAddress.WireValue()
				svc.BindAddress = nil
				o["service"] = svc
			}
			services = append(services, op(o))
		}
		for _, d := range s.DestList() {
			dests = append(dests, op(map[string]any{"op": "ensureDest", "owner": s.Owner, "service": d.Service, "dest": d.Dest}))
		}
	}
	return append(append(settings, services...), dests...)
}

// Boot restores every stack's entries and settings from the ledger, under its lock (waiting until deadline at
// most). lines say each change; failures each op that failed (boot tries them all).
func (e *Engine) Boot(deadline time.Time) (lines, failures []string) {
	l, err := ledger.Open(deadline, nil)
	if err != nil {
		return nil, []string{err.Error()}
	}
	defer l.Close()
	failures = SkippedFiles(l)
	req := protocol.Request{V: protocol.Version, Ops: bootOps(l.Stacks())}
	resp := e.run(req, NewProgress(req), l)
	for i, r := range resp.Results {
		op, perr := protocol.DecodeOp(req.Ops[i])
		if perr != nil {
			failures = append(failures, fmt.Sprintf("a ledger record does not decode (%s): %s", req.Ops[i], perr.Message))
			continue
		}
		if r["ok"] != true {
			failures = append(failures, fmt.Sprintf("restoring for stack %s: %s", op.Owner, r["error"].(*protocol.Error).Message))
			continue
		}
		if r["changed"] == true {
			lines = append(lines, restoredLine(op, r))
		}
	}
	if resp.Error != nil {
		failures = append(failures, resp.Error.Message)
	}
	return lines, failures
}

// SkippedFiles are boot's failures for the stack files it could not read: every other stack is restored.
func SkippedFiles(l *ledger.Ledger) []string {
	var out []string
	for _, err := range l.Unreadable() {
		out = append(out, "skipped, its entries not restored: "+ledger.SkippedAdvice(err))
	}
	return out
}

// restoredLine says what a boot op changed, in ipvsadm's words: "add -A -t 192.0.2.10:80 -s wlc (stack a/b/c)".
func restoredLine(op *protocol.Op, r protocol.Result) string {
	verb := "update"
	if r["created"] == true {
		verb = "add"
	}
	switch op.Name {
	case "ensureService":
		return fmt.Sprintf("%s %s (stack %s)", verb, serviceText(op), op.Owner)
	case "ensureDest":
		return fmt.Sprintf("%s %s (stack %s)", verb, destText(op), op.Owner)
	}
	return fmt.Sprintf("set %s (stack %s)", op.Settings.Describe(), op.Owner)
}

// serviceText renders a recorded service as an ipvsadm line.
func serviceText(op *protocol.Op) string {
	s, err := mergeService(nil, op.Service, op.ServiceChange)
	if err != nil {
		return op.Service.String()
	}
	return savefmt.ServiceLine(s)
}

func destText(op *protocol.Op) string {
	d, err := mergeDest(nil, destKey(op), op.DestChange)
	if err != nil {
		return fmt.Sprintf("%s of %s", destKey(op), op.Service)
	}
	return savefmt.DestLine(op.Service, d)
}

// LedgerText is the ledger for an operator (`ipvs-helper owners`): per stack, its file, entries as ipvsadm lines
// and its settings with the values they replaced.
func LedgerText(l *ledger.Ledger) string {
	var b strings.Builder
	for _, err := range l.Unreadable() {
		fmt.Fprintf(&b, "unreadable: %s\n", ledger.SkippedAdvice(err))
	}
	if w := l.StrayWarning(); w != "" {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	stacks := l.Stacks()
	if len(stacks) == 0 {
		fmt.Fprintf(&b, "No stack owns anything on this director (no readable records under %s).\n", ledger.Dir)
		return b.String()
	}
	for _, s := range stacks {
		fmt.Fprintf(&b, "stack %s (%s)\n", s.Owner, s.Path)
		for _, op := range bootOps([]*ledger.Stack{s}) {
			dec, perr := protocol.DecodeOp(op)
			if perr != nil {
				fmt.Fprintf(&b, "  (a record that does not decode: %s)\n", perr.Message)
				continue
			}
			switch dec.Name {
			case "ensureService":
				fmt.Fprintf(&b, "  %s%s\n", serviceText(dec), boundText(dec.Bind))
			case "ensureDest":
				fmt.Fprintf(&b, "  %s\n", destText(dec))
			default:
				orig, perr := protocol.DecodeSettings(s.Settings.Original, true)
				before := "?"
				if perr == nil {
					before = orig.Describe()
				}
				fmt.Fprintf(&b, "  settings: %s (before: %s)\n", dec.Settings.Describe(), before)
			}
		}
	}
	return b.String()
}

// boundText says where a recorded service binds its address, for `owners`.
func boundText(b *protocol.Binding) string {
	if b == nil {
		return ""
	}
	return " (address bound on " + b.Interface + ")"
}

// bootWanted: the boot unit is installed while the ledger records anything to restore, stack entries or hosts.
func bootWanted(l *ledger.Ledger) bool {
	if len(l.Stacks()) > 0 {
		return true
	}
	recs, err := ledger.LoadHosts()
	return err != nil || len(recs) > 0 // an unreadable hosts file may hold records: keep the unit
}

// BootHosts prepares every recorded host again after a reboot (the boot unit runs it through "boot"): the VIPs back
// on lo or the tunnel device (its module loaded), the sysctls set, each record keeping the originals (and what it
// found there) from before the reboot. It needs no IPVS.
func (e *Engine) BootHosts(deadline time.Time) (lines, failures []string) {
	l, err := ledger.Open(deadline, nil)
	if err != nil {
		return nil, []string{err.Error()}
	}
	defer l.Close()
	recs, err := ledger.LoadHosts()
	if err != nil {
		return nil, []string{err.Error()}
	}
	req := protocol.Request{V: protocol.Version}
	for _, r := range recs {
		vips := make([]string, len(r.VIPs))
		for i, v := range r.VIPs {
			vips[i] = v.Address
		}
		host := map[string]any{"forwarding": r.Forwarding, "vips": vips}
		if typ := tunnelOf(r.Device); typ != "" {
			host["tunnel"] = map[string]string{"type": typ}
		}
		b, _ := json.Marshal(map[string]any{"op": "ensureHost", "owner": r.Owner, "holder": r.Holder, "host": host})
		req.Ops = append(req.Ops, b)
	}
	resp := e.run(req, NewProgress(req), l)
	for i, res := range resp.Results {
		switch {
		case res["ok"] != true:
			failures = append(failures, fmt.Sprintf("preparing this host again for %s (stack %s): %s", recs[i].Holder, recs[i].Owner, res["error"].(*protocol.Error).Message))
		case res["changed"] == true:
			lines = append(lines, fmt.Sprintf("prepared this host again for %s (stack %s): its %s VIPs and sysctls", recs[i].Holder, recs[i].Owner, recs[i].Forwarding))
		}
	}
	return lines, failures
}
