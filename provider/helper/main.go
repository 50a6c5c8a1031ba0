// Command ipvs-helper applies IPVS load-balancer configuration over generic netlink: JSON requests from the
// pulumi-ipvs provider (apply, serve), and ipvsadm-compatible save/restore. See PROTOCOL.md.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/engine"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ipvs"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/ledger"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/netif"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/savefmt"
)

// version is set at build time from package.json (-X main.version=...).
var version = "dev"

const usage = `usage: ipvs-helper <command> [--timeout-seconds N]
  apply              run one JSON request from stdin, print one JSON response
  serve              run one JSON request per stdin line, print one response line each, until EOF
  save               print the IPVS table exactly as "ipvsadm -Sn" does
  restore [--dry-run] converge the table to "ipvsadm -Sn" text on stdin with the fewest changes (never flushes)
  version            print {"helper","protocol","kernel"}
  names              print the names the protocol accepts (schedulers, flags, forwarding, tunnels, sysctls) and the defaults
  owners [--json]    print the ownership ledger: which stack owns which entries and settings on this director
  boot               restore every stack's owned entries and settings from the ledger (the boot unit runs this)
  unit               print the systemd unit that runs "boot" at startup
  health [--metrics-dir DIR]
                     run the health checks the ledger records until stopped (SIGTERM/SIGINT); the kernel is left as
                     it is when it stops. --timeout-seconds bounds each wait for the ledger lock and each kernel call.
                     DIR receives Prometheus textfile metrics (ipvs_health.prom).
  --timeout-seconds N (1..3600, default 30) bounds each request of apply and serve, and the whole of the other
                     commands; a kernel call or modprobe gets 2/3 of it. A request past it is answered with TIMEOUT
                     for the ops that did not finish (after saving the ledger records of those that did) and the
                     helper exits 3; another command exits 1.
`

// limits are the deadlines of one helper run.
type limits struct {
	request time.Duration // one request of apply/serve, or a whole save/restore/version
	// call bounds one kernel call or modprobe, shorter than request so that a hang there fails its op and the
	// request goes on.
	call time.Duration
}

func limitsOf(seconds int) limits {
	return limits{request: time.Duration(seconds) * time.Second, call: time.Duration(max(1, seconds*2/3)) * time.Second}
}

// exitHung is the exit status after a request that did not finish in time: a goroutine is stuck in the kernel.
const exitHung = 3

func main() {
	// Batches allocate much short-lived garbage (JSON, netlink messages); a lazier GC is a large win on small directors.
	debug.SetGCPercent(400)
	args, metricsDir, mok := cutMetricsDir(os.Args[1:])
	cmd, flag, lim, ok := parseArgs(args)
	ok = ok && mok
	if !ok {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if cmd != "apply" && cmd != "serve" && cmd != "health" {
		// These run no requests to answer: past the deadline they only say what hung and exit.
		time.AfterFunc(lim.request, func() {
			killModprobes()
			fmt.Fprintf(os.Stderr, "ipvs-helper: %s did not finish within %s (%s)\n", cmd, lim.request, engine.Hanging)
			os.Exit(1)
		})
	}
	var err error
	switch cmd {
	case "version":
		err = printVersion(lim)
	case "names":
		// The kernel's vocabulary and, under "health", the checks' (kept in the protocol package, which owns them).
		err = json.NewEncoder(os.Stdout).Encode(struct {
			ipvs.Vocabulary
			Health protocol.HealthVocabulary `json:"health"`
		}{ipvs.Names(), protocol.HealthNames()})
	case "apply":
		err = apply(lim)
	case "serve":
		err = serve(lim)
	case "save":
		err = save(lim)
	case "restore":
		err = restore(lim, flag)
	case "owners":
		err = owners(lim, flag)
	case "boot":
		err = boot(lim)
	case "unit":
		err = printUnit()
	case "health":
		err = runHealth(lim, metricsDir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ipvs-helper:", err)
		os.Exit(1)
	}
}

// parseArgs reads "<command> [--dry-run (restore) | --json (owners)] [--timeout-seconds N | --timeout-seconds=N]";
// flag is whether the command's own flag was given.
func parseArgs(args []string) (cmd string, flag bool, lim limits, ok bool) {
	if len(args) == 0 {
		return "", false, lim, false
	}
	cmd, seconds, timeoutSet := args[0], 30, false
	switch cmd {
	case "version", "names", "apply", "serve", "save", "restore", "owners", "boot", "unit", "health":
	default:
		return "", false, lim, false
	}
	for rest := args[1:]; len(rest) > 0; rest = rest[1:] {
		arg := rest[0]
		switch {
		case (arg == "--dry-run" && cmd == "restore" || arg == "--json" && cmd == "owners") && !flag:
			flag = true
		case (arg == "--timeout-seconds" || strings.HasPrefix(arg, "--timeout-seconds=")) && !timeoutSet:
			val, found := strings.CutPrefix(arg, "--timeout-seconds=")
			if !found {
				if len(rest) < 2 {
					return "", false, lim, false
				}
				rest, val = rest[1:], rest[1]
			}
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 || n > 3600 {
				fmt.Fprintf(os.Stderr, "ipvs-helper: --timeout-seconds takes a whole number of seconds from 1 to 3600, not %q\n", val)
				return "", false, lim, false
			}
			seconds, timeoutSet = n, true
		default:
			return "", false, lim, false
		}
	}
	return cmd, flag, limitsOf(seconds), true
}

func printVersion(lim limits) error {
	out := map[string]any{"helper": version, "protocol": protocol.Version, "kernel": kernelIPVSVersion(lim)}
	return json.NewEncoder(os.Stdout).Encode(out)
}

// failAll answers every op of a request with the same error (the kernel could not be reached at all).
func failAll(req protocol.Request, e *protocol.Error) protocol.Response {
	resp := protocol.Response{V: protocol.Version, Results: make([]protocol.Result, len(req.Ops)), Error: e}
	for i := range resp.Results {
		resp.Results[i] = protocol.Fail(e)
	}
	return resp
}

// runDoc answers one request document within lim.request (engine.Watch); eng is opened on first use and kept (serve
// reuses it). hung: the request did not finish in time and the helper must exit.
func runDoc(eng **engine.Engine, doc []byte, lim limits) (resp protocol.Response, hung bool) {
	var req protocol.Request
	if err := json.Unmarshal(doc, &req); err != nil {
		return protocol.Response{V: protocol.Version, Results: []protocol.Result{}, Error: &protocol.Error{Code: protocol.CodeBadRequest,
			Message: fmt.Sprintf("the request is not valid JSON of the form {\"v\":1,\"ops\":[...]}: %v", err)}}, false
	}
	// *eng is written on the request's goroutine and read by the next request's only after Watch saw it finish.
	return engine.Watch(req, lim.request, func(p *engine.Progress) protocol.Response {
		if hostOnly(req) {
			// A real server's host (RealServerHost) has no IPVS to open, and needs none.
			return configure(engine.New(nil, ipvs.KernelVersion{}, modprober(lim)), lim).RunTracked(req, p)
		}
		if *eng == nil {
			p.Stage("connecting to IPVS, which loads module ip_vs when it is missing")
			e, perr := openEngine(lim)
			if perr != nil {
				return failAll(req, perr)
			}
			*eng = configure(e, lim)
			p.Stage("")
		}
		return (*eng).RunTracked(req, p)
	})
}

// configure gives an engine the run's deadlines.
func configure(e *engine.Engine, lim limits) *engine.Engine {
	e.LockWait = lim.call        // the lock is waited for within the request's deadline
	e.ScanWait = lim.request / 3 // under the lock: others wait lim.call for it
	e.Net = netif.RTNL{Timeout: lim.call}
	return e
}

// hostOnly: every op of req is a real server host's (ensureHost, deleteHost, getHost), which touch no IPVS.
func hostOnly(req protocol.Request) bool {
	for _, raw := range req.Ops {
		var o struct {
			Op string `json:"op"`
		}
		if json.Unmarshal(raw, &o) != nil || (o.Op != "ensureHost" && o.Op != "deleteHost" && o.Op != "getHost") {
			return false
		}
	}
	return len(req.Ops) > 0
}

// exitAfterHang ends the helper after it answered a request that did not finish in time.
func exitAfterHang(lim limits) {
	killModprobes()
	fmt.Fprintf(os.Stderr, "ipvs-helper: a request did not finish within %s (%s); exiting\n", lim.request, engine.Hanging)
	os.Exit(exitHung)
}

func apply(lim limits) error {
	doc, err := io.ReadAll(os.Stdin)
	if err != nil {
		return fmt.Errorf("reading the request from stdin: %w", err)
	}
	var eng *engine.Engine
	resp, hung := runDoc(&eng, doc, lim)
	if err := json.NewEncoder(os.Stdout).Encode(resp); err != nil {
		return err
	}
	if hung {
		exitAfterHang(lim)
	}
	if resp.Error != nil && len(resp.Results) == 0 {
		os.Exit(1) // the request itself was unreadable
	}
	return nil
}

func serve(lim limits) error {
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	out := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(out)
	var eng *engine.Engine
	for {
		line, err := in.ReadBytes('\n')
		if len(line) > 0 && len(trimSpace(line)) > 0 {
			resp, hung := runDoc(&eng, line, lim)
			if encErr := enc.Encode(resp); encErr != nil {
				return encErr
			}
			if ferr := out.Flush(); ferr != nil {
				return ferr
			}
			if hung {
				exitAfterHang(lim)
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading requests from stdin: %w", err)
		}
	}
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func save(lim limits) error {
	k, _, perr := openKernel(lim)
	if perr != nil {
		return perr
	}
	tbl, err := engine.ReadTable(k)
	if err != nil {
		return fmt.Errorf("reading the IPVS table: %w", err)
	}
	return savefmt.Write(os.Stdout, tbl)
}

func restore(lim limits, dryRun bool) error {
	k, kv, perr := openKernel(lim)
	if perr != nil {
		return perr
	}
	rules, err := savefmt.Parse(os.Stdin, kv)
	if err != nil {
		return fmt.Errorf("reading the rules from stdin: %w (nothing was changed)", err)
	}
	eng := engine.New(k, kv, modprober(lim))
	plan, err := eng.PlanRestore(rules)
	if err != nil {
		return err
	}
	for _, c := range plan {
		if !dryRun {
			if err := c.Apply(); err != nil {
				return err
			}
		}
		fmt.Println(c.Text)
	}
	return nil
}

// owners prints the ledger, read under its lock.
func owners(lim limits, asJSON bool) error {
	l, err := ledger.Open(time.Now().Add(lim.call), nil)
	if err != nil {
		return err
	}
	defer l.Close()
	if !asJSON {
		_, err := fmt.Print(engine.LedgerText(l))
		return err
	}
	stacks := []any{}
	for _, s := range l.Stacks() {
		stacks = append(stacks, s.Record())
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"dir": ledger.Dir, "stacks": stacks})
}

// boot restores the ledger; it exits 1 after trying everything when something failed.
func boot(lim limits) error {
	l, err := ledger.Load()
	if err != nil {
		return err
	}
	if w := l.StrayWarning(); w != "" {
		fmt.Fprintln(os.Stderr, "ipvs-helper boot:", w)
	}
	var lines, failures []string
	if len(l.Stacks()) == 0 {
		failures = engine.SkippedFiles(l) // nothing to restore: IPVS need not even be loaded
	} else {
		eng, perr := openEngine(lim)
		if perr != nil {
			return perr
		}
		eng.LockWait = lim.call
		eng.ScanWait = lim.request / 3
		eng.Net = netif.RTNL{Timeout: lim.call}
		lines, failures = eng.Boot(time.Now().Add(lim.call))
	}
	// Real server hosts (RealServerHost) need no IPVS: prepared again on an engine without it.
	if recs, err := ledger.LoadHosts(); err != nil {
		failures = append(failures, err.Error())
	} else if len(recs) > 0 {
		hl, hf := configure(engine.New(nil, ipvs.KernelVersion{}, modprober(lim)), lim).BootHosts(time.Now().Add(lim.call))
		lines, failures = append(lines, hl...), append(failures, hf...)
	}
	for _, line := range lines {
		fmt.Println(line)
	}
	for _, f := range failures {
		fmt.Fprintln(os.Stderr, "ipvs-helper boot:", f)
	}
	if len(failures) > 0 {
		return fmt.Errorf("boot made %d changes, and %d records could not be restored (above)", len(lines), len(failures))
	}
	return nil
}

// printUnit prints the boot unit with this binary's own path as its ExecStart.
func printUnit() error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this helper's own path (/proc/self/exe): %w", err)
	}
	_, err = fmt.Print(ledger.UnitText(exe))
	return err
}
