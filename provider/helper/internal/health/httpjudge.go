package health

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
)

// maxAnswer bounds what an HTTP probe reads of an answer: its status line and headers, then MaxBody of its body.
const maxAnswer = maxHeader + MaxBody

// maxLine bounds one line of an answer's status line and headers.
const maxLine = 4096

// errClosedEarly is an answer cut short: the server closed (or the read bound came) before it could be judged.
var errClosedEarly = errors.New("connection closed before a whole answer")

// judgeHTTP judges an HTTP answer from its first bytes, b, both for the reactor, which reads them as they come, and
// for an https probe, which reads them through TLS: done when they tell, or when ended (the server closed, or b
// reached maxAnswer), then err is why the answer is not healthy. With no expectBody the status line is enough.
func judgeHTTP(b []byte, ended bool, h *protocol.HTTPCheck) (done bool, err error) {
	line, rest, ok := httpLine(b)
	if !ok {
		return cutLine(rest, ended)
	}
	// "HTTP/1.1 200 OK"
	f := strings.Fields(string(line))
	if len(f) < 2 || !strings.HasPrefix(f[0], "HTTP/") {
		return true, fmt.Errorf("not an HTTP answer: %.60q", line)
	}
	status, err := strconv.Atoi(f[1])
	if err != nil {
		return true, fmt.Errorf("not an HTTP answer: %.60q", line)
	}
	ranges, _ := protocol.ParseStatusRanges(h.ExpectStatus) // validated when recorded
	in := false
	for _, rg := range ranges {
		in = in || status >= rg.Lo && status <= rg.Hi
	}
	if !in {
		return true, fmt.Errorf("status %d, not in %s", status, h.ExpectStatus)
	}
	if h.ExpectBody == "" {
		return true, nil
	}
	for n := 0; ; n++ {
		if line, rest, ok = httpLine(rest); !ok {
			return cutLine(rest, ended)
		}
		if len(line) == 0 {
			break
		}
		if n > 200 {
			return true, errors.New("more than 200 HTTP headers")
		}
	}
	body := rest[:min(len(rest), MaxBody)]
	if bytes.Contains(body, []byte(h.ExpectBody)) {
		return true, nil
	}
	if !ended && len(body) < MaxBody {
		return false, nil
	}
	return true, fmt.Errorf("status %d but the first %d bytes of the body lack %q", status, len(body), h.ExpectBody)
}

// httpLine cuts the line b begins with off b, without its line end; ok is false while b holds no whole line (rest
// is then b).
func httpLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b[:min(len(b), maxLine)], '\n')
	if i < 0 {
		return nil, b, false
	}
	return bytes.TrimRight(b[:i], "\r"), b[i+1:], true
}

// cutLine judges a line not whole yet: too long already, or cut short by the end of the answer.
func cutLine(b []byte, ended bool) (bool, error) {
	switch {
	case len(b) >= maxLine:
		return true, fmt.Errorf("an HTTP header line longer than %d bytes", maxLine)
	case ended:
		return true, errClosedEarly
	}
	return false, nil
}

// roomFor grows an answer's buffer for the next read, doubling it up to maxAnswer: most answers fit the first
// 4 KiB. A buffer already at maxAnswer is full (the answer is judged as it is).
func roomFor(b []byte) []byte {
	if len(b) < cap(b) || len(b) >= maxAnswer {
		return b
	}
	return slices.Grow(b, min(max(cap(b), 4096), maxAnswer-len(b)))
}

// readHTTP reads an answer from conn until judgeHTTP can tell (a probe run by a goroutine: the reactor reads its own).
func readHTTP(conn io.Reader, h *protocol.HTTPCheck) error {
	bp := answers.Get().(*[]byte)
	b := (*bp)[:0]
	defer func() { *bp = b[:0]; answers.Put(bp) }()
	for {
		b = roomFor(b)
		n, err := conn.Read(b[len(b):min(cap(b), maxAnswer)])
		b = b[:len(b)+n]
		if done, verdict := judgeHTTP(b, err == io.EOF || len(b) >= maxAnswer, h); done {
			return verdict
		}
		if err != nil {
			return short(err)
		}
	}
}
