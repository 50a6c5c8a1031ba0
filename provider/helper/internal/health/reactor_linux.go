//go:build linux

package health

import (
	"container/heap"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// reactor runs tcp and plain-http probes on one event loop, as keepalived does: each probe a raw nonblocking socket
// in an epoll set of the reactor's own, that set one file in Go's poller, and one deadline on that file for every
// probe (the earliest). A probe costs no *os.File (no poller registration, no runtime timer of its own) and no
// goroutine hand-off: user time that the lab guest's profile showed on every probe, and keepalived does not spend.
type reactor struct {
	epfd int
	ep   *os.File // epfd in Go's poller: readable when a probe's socket is ready
	rc   syscall.RawConn

	mu sync.Mutex
	// probes are the probes in flight by socket, byDeadline the same soonest deadline first; armed is the deadline
	// set on ep (zero: none).
	probes     []*rprobe
	byDeadline deadlineHeap
	armed      time.Time
	gen        uint32
	free       []*rprobe // ended probes, reused with their buffers
	ready      []result  // results not taken yet
	// urgent: one of them is a result its probe's urgency named.
	urgent bool
	closed bool

	notify  chan struct{} // a value when ready has results
	urgency chan struct{} // a value when ready has an urgent one
	done    chan struct{} // closed when the loop has ended
}

// rprobe is one probe in flight.
type rprobe struct {
	fd  int
	gen uint32 // tells its socket's events from those of an earlier probe's with the same fd
	key Key
	u   Urgency
	// http is nil for a tcp probe; an http probe sends req (sent bytes of it so far), then reads answer.
	http      *protocol.HTTPCheck
	req       []byte
	sent      int
	answer    []byte
	connected bool
	deadline  time.Time
	timeout   time.Duration
	at        int // its index in byDeadline
}

// NewReactor starts a reactor: Linux's, for tcp and plain-http probes.
func NewReactor() (Reactor, error) {
	r, err := newReactor()
	if err != nil {
		return nil, err
	}
	go r.loop()
	return r, nil
}

// newReactor is a reactor whose loop is not started yet.
func newReactor() (*reactor, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("no epoll set for the probes: %v", err)
	}
	// Nonblocking, so that os.NewFile puts it in Go's poller.
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("no epoll set for the probes: %v", err)
	}
	r := &reactor{epfd: fd, ep: os.NewFile(uintptr(fd), "probes"), notify: make(chan struct{}, 1), urgency: make(chan struct{}, 1), done: make(chan struct{})}
	// A file outside the poller would take no deadline, and probes could then hang: refuse it.
	if err := r.ep.SetReadDeadline(time.Time{}); err != nil {
		r.ep.Close()
		return nil, fmt.Errorf("the probes' epoll set is not in Go's poller: %v", err)
	}
	if r.rc, err = r.ep.SyscallConn(); err != nil {
		r.ep.Close()
		return nil, err
	}
	return r, nil
}

func (r *reactor) Takes(checkType string) bool { return checkType == "tcp" || checkType == "http" }

func (r *reactor) Ready() <-chan struct{} { return r.notify }

func (r *reactor) Urgent() <-chan struct{} { return r.urgency }

func (r *reactor) Take(spare []result) []result {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.ready
	r.ready, r.urgent = spare[:0], false
	return out
}

func (r *reactor) Start(key Key, c protocol.HealthCheck, u Urgency) error {
	target := netip.AddrPortFrom(addrOf(key), c.Port)
	timeout := time.Duration(c.TimeoutSeconds * float64(time.Second))
	fd, _, err := openProbe(target) // connected at once or not, its socket says so by being writable
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		closeSocket(fd)
		return errors.New("the checker is stopping")
	}
	var p *rprobe
	if n := len(r.free); n > 0 {
		p, r.free = r.free[n-1], r.free[:n-1]
	} else {
		p = &rprobe{}
	}
	r.gen++
	p.fd, p.gen, p.key, p.u, p.http, p.sent, p.connected = fd, r.gen, key, u, nil, 0, false
	p.req, p.answer = p.req[:0], p.answer[:0]
	p.deadline, p.timeout = time.Now().Add(timeout), timeout
	if c.Type == "http" {
		p.http, p.req = c.HTTP, appendRequest(p.req, target, c.HTTP)
	}
	if err := r.watch(p, syscall.EPOLL_CTL_ADD, syscall.EPOLLOUT); err != nil {
		closeSocket(fd)
		r.free = append(r.free, p)
		return err
	}
	for fd >= len(r.probes) {
		r.probes = append(r.probes, nil)
	}
	r.probes[fd] = p
	heap.Push(&r.byDeadline, p)
	r.arm()
	return nil
}

// watch adds p's socket to the epoll set (op EPOLL_CTL_ADD) or changes what it waits for (EPOLL_CTL_MOD).
func (r *reactor) watch(p *rprobe, op int, events uint32) error {
	ev := syscall.EpollEvent{Events: events, Fd: int32(p.fd), Pad: int32(p.gen)}
	if err := syscall.EpollCtl(r.epfd, op, p.fd, &ev); err != nil {
		return fmt.Errorf("cannot watch the probe's socket: %v", err)
	}
	return nil
}

// arm sets ep's deadline to the soonest probe's, when it changed.
func (r *reactor) arm() {
	var want time.Time
	if len(r.byDeadline) > 0 {
		want = r.byDeadline[0].deadline
	}
	if !want.Equal(r.armed) {
		r.ep.SetReadDeadline(want) // cannot fail: NewReactor tried it
		r.armed = want
	}
}

// loop waits for the probes' sockets and deadlines until Close, and hands the results over in batches: one a wake.
func (r *reactor) loop() {
	defer close(r.done)
	events := make([]syscall.EpollEvent, 256)
	for {
		n := 0
		err := r.rc.Read(func(fd uintptr) bool {
			n = epollWait(int(fd), events)
			return n > 0
		})
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// The sockets ready by now are judged as usual, not as late.
			err = r.rc.Control(func(fd uintptr) { n = epollWait(int(fd), events) })
		}
		if err != nil {
			return // closed
		}
		if !r.serve(events[:n]) {
			return
		}
	}
}

// serve handles the sockets ready and the deadlines passed, and tells the Runner when results are ready: false
// once the reactor is closed.
func (r *reactor) serve(events []syscall.EpollEvent) bool {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return false
	}
	for _, ev := range events {
		r.handle(ev)
	}
	for now := time.Now(); len(r.byDeadline) > 0 && !r.byDeadline[0].deadline.After(now); {
		r.expire(r.byDeadline[0])
	}
	r.arm()
	ready, urgent := len(r.ready) > 0, r.urgent
	r.mu.Unlock()
	if urgent { // told first: whoever Ready wakes sees it
		select {
		case r.urgency <- struct{}{}:
		default:
		}
	}
	if ready {
		select {
		case r.notify <- struct{}{}:
		default: // the Runner has yet to take the last ones: it takes these with them
		}
	}
	return true
}

// handle moves a probe on when its socket is ready: connected (a tcp probe ends there), request sent, answer read.
func (r *reactor) handle(ev syscall.EpollEvent) {
	fd := int(ev.Fd)
	if fd >= len(r.probes) || r.probes[fd] == nil || r.probes[fd].gen != uint32(ev.Pad) {
		return // ended meanwhile
	}
	p := r.probes[fd]
	if !p.connected {
		// Writable (or in error): the handshake is over, and SO_ERROR tells how.
		if errno := soError(fd); errno != 0 {
			r.finish(p, short(errno))
			return
		}
		if p.http == nil {
			r.finish(p, nil)
			return
		}
		p.connected = true
	}
	if p.sent < len(p.req) {
		if err := r.send(p); err != nil {
			r.finish(p, err)
		}
		return
	}
	if done, err := r.receive(p); done {
		r.finish(p, err)
	}
}

// send writes what is left of p's request (the socket's buffer takes the few bytes at once), then waits for the
// answer.
func (r *reactor) send(p *rprobe) error {
	for p.sent < len(p.req) {
		n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(p.fd), uintptr(unsafe.Pointer(&p.req[p.sent])), uintptr(len(p.req)-p.sent))
		switch errno {
		case 0:
			p.sent += int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return nil // writable again later
		default:
			return short(errno)
		}
	}
	return r.watch(p, syscall.EPOLL_CTL_MOD, syscall.EPOLLIN|syscall.EPOLLRDHUP)
}

// receive reads what has come of p's answer and judges it: done when judged (err then the verdict).
func (r *reactor) receive(p *rprobe) (done bool, err error) {
	for {
		p.answer = roomFor(p.answer)
		b := p.answer[len(p.answer):min(cap(p.answer), maxAnswer)]
		n, _, errno := syscall.RawSyscall(syscall.SYS_READ, uintptr(p.fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
		switch errno {
		case 0:
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false, nil // judged with the last bytes read: more to come
		default:
			if done, err := judgeHTTP(p.answer, false, p.http); done {
				return true, err // judged by what came before the error
			}
			return true, short(errno)
		}
		p.answer = p.answer[:len(p.answer)+int(n)]
		if done, err := judgeHTTP(p.answer, n == 0 || len(p.answer) >= maxAnswer, p.http); done {
			return true, err
		}
	}
}

// expire ends a probe at its deadline, after one last look: on a starved CPU the loop can come to a socket only
// after its deadline although the connection, or the answer, came in time, and that is no failure of the real
// server (as sockConn's reads past the deadline).
func (r *reactor) expire(p *rprobe) {
	err := error(os.ErrDeadlineExceeded)
	switch {
	case !p.connected:
		var cerr error
		if connected(uintptr(p.fd), &cerr) && cerr == nil && p.http == nil {
			err = nil // a tcp probe's connection was made
		}
	case p.sent == len(p.req):
		if done, verdict := r.receive(p); done {
			err = verdict
		}
	}
	r.finish(p, err) // overdue: a failure past the deadline is "no answer within"
}

// finish ends p with its result: its socket closed (a reset, see openProbe), the result ready for the Runner.
func (r *reactor) finish(p *rprobe, err error) {
	closeSocket(p.fd)
	r.probes[p.fd] = nil
	heap.Remove(&r.byDeadline, p.at)
	res := result{p.key, overdue(err, p.deadline, p.timeout)}
	r.ready = append(r.ready, res)
	r.urgent = r.urgent || p.u.Of(res.err)
	p.http = nil
	if cap(p.answer) > 4096 {
		p.answer = nil // a big answer's buffer is not kept for every probe to come (up to MaxProbes of them)
	}
	r.free = append(r.free, p)
}

// Close ends the loop and closes every probe's socket and the epoll set; the probes in flight get no result.
func (r *reactor) Close() error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	err := r.ep.Close() // the loop's wait ends, and Close returns once it has let go of the set
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.byDeadline {
		closeSocket(p.fd)
	}
	r.byDeadline, r.probes = nil, nil
	return err
}

// epollWait takes the events ready on epfd without waiting (Go's poller did the waiting); none on EINTR.
func epollWait(epfd int, events []syscall.EpollEvent) int {
	n, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if errno != 0 {
		return 0
	}
	return int(n)
}

// deadlineHeap is the probes in flight, soonest deadline first (container/heap), each knowing its index.
type deadlineHeap []*rprobe

func (h deadlineHeap) Len() int           { return len(h) }
func (h deadlineHeap) Less(i, j int) bool { return h[i].deadline.Before(h[j].deadline) }
func (h deadlineHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].at, h[j].at = i, j
}
func (h *deadlineHeap) Push(x any) {
	p := x.(*rprobe)
	p.at = len(*h)
	*h = append(*h, p)
}
func (h *deadlineHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	*h = old[:len(old)-1]
	return p
}
