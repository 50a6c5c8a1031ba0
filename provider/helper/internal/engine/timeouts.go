package engine

import (
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// Connection timeouts: the setTimeouts op and the timeouts item of director settings. A timeout of 0 means
// "unchanged" to the kernel and "not managed" in a settings record.

func timeoutsJSON(t ipvs.Timeouts) map[string]uint32 {
	return map[string]uint32{"tcp": t.TCP, "tcpfin": t.TCPFin, "udp": t.UDP}
}

// timeoutFields are the three timeouts of t in one order, so one loop handles each of them alike.
func timeoutFields(t *ipvs.Timeouts) [3]*uint32 { return [3]*uint32{&t.TCP, &t.TCPFin, &t.UDP} }

func (e *Engine) setTimeouts(op *protocol.Op) (protocol.Result, *protocol.Error) {
	cur, err := e.k.Timeouts()
	if err != nil {
		return nil, kernelError("reading the connection timeouts", err, false)
	}
	want := cur
	for i, to := range timeoutFields(&want) {
		if from := *timeoutFields(&op.Timeouts)[i]; from != 0 {
			*to = from
		}
	}
	if want == cur {
		return protocol.Result{"changed": false, "timeouts": timeoutsJSON(cur)}, nil
	}
	if err := e.k.SetTimeouts(op.Timeouts); err != nil {
		return nil, kernelError("setting the connection timeouts", err, false)
	}
	return protocol.Result{"changed": true, "timeouts": timeoutsJSON(want)}, nil
}

// setTimeoutsTo sets the non-zero fields of want that differ from cur.
func (e *Engine) setTimeoutsTo(cur, want ipvs.Timeouts) (changed bool, perr *protocol.Error) {
	differs := false
	for i, w := range timeoutFields(&want) {
		differs = differs || (*w != 0 && *w != *timeoutFields(&cur)[i])
	}
	if !differs {
		return false, nil
	}
	if err := e.k.SetTimeouts(want); err != nil {
		return false, kernelError("setting the connection timeouts", err, false)
	}
	return true, nil
}

// applyTimeouts puts the timeouts rec manages and want drops back to their originals, and sets want's.
func (e *Engine) applyTimeouts(rec settingsRecord, want protocol.Settings, cur ipvs.Timeouts) (bool, *protocol.Error) {
	target := want.Timeouts
	applied, orig := timeoutFields(&rec.applied.Timeouts), timeoutFields(&rec.original.Timeouts)
	for i, t := range timeoutFields(&target) {
		if *t == 0 && *applied[i] != 0 {
			*t = *orig[i]
		}
	}
	return e.setTimeoutsTo(cur, target)
}
