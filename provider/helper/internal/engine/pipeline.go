package engine

import (
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// Writes are pipelined: ensureService, deleteService, ensureDest and deleteDest decide against the batch's view
// what to send, update the view as if it succeeded, and queue the write; queued writes go to the kernel many to a
// sendmsg (in order, so a real server still follows its service's creation) and each op's result is made from its
// own ACK. The queue is flushed before anything reads the kernel, before any other op, before a second op on an
// entry with a write still queued, and when it holds a chunk.

// step is what an op decided: its final result, or a write still to send and what to make of the kernel's answer.
type step struct {
	res  protocol.Result
	err  *protocol.Error
	w    *ipvs.Write
	then func(error) (protocol.Result, *protocol.Error)
}

func done(res protocol.Result, err *protocol.Error) step { return step{res: res, err: err} }

func send(w ipvs.Write, then func(error) (protocol.Result, *protocol.Error)) step {
	return step{w: &w, then: then}
}

// queued is a write waiting in the pipeline and the op it answers.
type queued struct {
	idx  int
	w    ipvs.Write
	then func(error) (protocol.Result, *protocol.Error)
}

// entry names what a pipelined op writes: a service, or one real server of it.
type entry struct {
	svc    ipvs.ServiceKey
	dest   ipvs.DestKey
	isDest bool
}

// pipelined tells whether op is one of the write ops and which entry it writes.
func pipelined(op *protocol.Op) (entry, bool) {
	switch op.Name {
	case "ensureService", "deleteService":
		return entry{svc: op.Service}, true
	case "ensureDest", "deleteDest":
		return entry{svc: op.Service, dest: destKey(op), isDest: true}, true
	}
	return entry{}, false
}

// enqueue runs a write op's decision and queues its write, or records its result when there is nothing to send.
func (e *Engine) enqueue(idx int, op *protocol.Op, ent entry) {
	if e.inQueue[ent] {
		e.sendQueued()
	}
	s := e.stepOp(idx, op)
	if s.w == nil {
		e.progress.settle(idx, result(s.res, s.err))
		return
	}
	e.queue = append(e.queue, queued{idx: idx, w: *s.w, then: s.then})
	e.inQueue[ent] = true
	if len(e.queue) >= ipvs.MaxChunkMsgs {
		e.sendQueued()
	}
}

// sendQueued sends the queued writes and settles their ops, in order. A handler that must retry (the kernel contradicted
// the view, or a module had to be loaded) does so at once with a synchronous write; the queue is empty by then, so
// the reads and writes it makes are not reordered with anything still waiting.
func (e *Engine) sendQueued() {
	q := e.queue
	if len(q) == 0 {
		return
	}
	e.queue = nil
	clear(e.inQueue)
	ws := make([]ipvs.Write, len(q))
	for i, p := range q {
		ws[i] = p.w
	}
	errs := e.k.Pipeline(ws)
	for i, p := range q {
		e.progress.settle(p.idx, result(p.then(errs[i])))
	}
}

// now runs a step to its end: its write, if any, is sent alone and at once.
func (e *Engine) now(s step) (protocol.Result, *protocol.Error) {
	if s.w == nil {
		return s.res, s.err
	}
	return s.then(e.exec(*s.w))
}

// exec sends one write and waits for its answer.
func (e *Engine) exec(w ipvs.Write) error { return e.k.Pipeline([]ipvs.Write{w})[0] }

func result(res protocol.Result, err *protocol.Error) protocol.Result {
	if err != nil {
		return protocol.Fail(err)
	}
	return protocol.OK(res)
}
