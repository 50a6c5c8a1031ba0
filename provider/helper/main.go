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

	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/engine"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/protocol"
	"github.com/pulumi-ipvs/pulumi-ipvs/provider/helper/internal/savefmt"
)

// version is set at build time from package.json (-X main.version=...).
var version = "dev"

const usage = `usage: ipvs-helper <command>
  apply              run one JSON request from stdin, print one JSON response
  serve              run one JSON request per stdin line, print one response line each, until EOF
  save               print the IPVS table exactly as "ipvsadm -Sn" does
  restore [--dry-run] converge the table to "ipvsadm -Sn" text on stdin with the fewest changes (never flushes)
  version            print {"helper","protocol","kernel"}
`

func main() {
	// Batches allocate much short-lived garbage (JSON, netlink messages); a lazier GC is a large win on small directors.
	debug.SetGCPercent(400)
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; {
	case cmd == "version" && len(args) == 0:
		err = printVersion()
	case cmd == "apply" && len(args) == 0:
		err = apply()
	case cmd == "serve" && len(args) == 0:
		err = serve()
	case cmd == "save" && len(args) == 0:
		err = save()
	case cmd == "restore" && (len(args) == 0 || len(args) == 1 && args[0] == "--dry-run"):
		err = restore(len(args) == 1)
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ipvs-helper:", err)
		os.Exit(1)
	}
}

func printVersion() error {
	out := map[string]any{"helper": version, "protocol": protocol.Version, "kernel": kernelIPVSVersion()}
	return json.NewEncoder(os.Stdout).Encode(out)
}

// failAll answers every op of a request with the same error (the kernel could not be reached at all).
func failAll(doc []byte, e *protocol.Error) protocol.Response {
	var req protocol.Request
	_ = json.Unmarshal(doc, &req)
	resp := protocol.Response{V: protocol.Version, Results: make([]protocol.Result, len(req.Ops)), Error: e}
	for i := range resp.Results {
		resp.Results[i] = protocol.Fail(e)
	}
	return resp
}

// runDoc answers one request document; eng is opened on first use and kept (serve reuses it).
func runDoc(eng **engine.Engine, doc []byte) protocol.Response {
	var probe protocol.Request
	if err := json.Unmarshal(doc, &probe); err != nil {
		return protocol.Response{V: protocol.Version, Results: []protocol.Result{}, Error: &protocol.Error{Code: protocol.CodeBadRequest,
			Message: fmt.Sprintf("the request is not valid JSON of the form {\"v\":1,\"ops\":[...]}: %v", err)}}
	}
	if *eng == nil {
		e, perr := openEngine()
		if perr != nil {
			return failAll(doc, perr)
		}
		*eng = e
	}
	return (*eng).Run(probe)
}

func apply() error {
	doc, err := io.ReadAll(os.Stdin)
	if err != nil {
		return fmt.Errorf("reading the request from stdin: %w", err)
	}
	var eng *engine.Engine
	resp := runDoc(&eng, doc)
	if err := json.NewEncoder(os.Stdout).Encode(resp); err != nil {
		return err
	}
	if resp.Error != nil && len(resp.Results) == 0 {
		os.Exit(1) // the request itself was unreadable
	}
	return nil
}

func serve() error {
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	out := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(out)
	var eng *engine.Engine
	for {
		line, err := in.ReadBytes('\n')
		if len(line) > 0 && len(trimSpace(line)) > 0 {
			if encErr := enc.Encode(runDoc(&eng, line)); encErr != nil {
				return encErr
			}
			if ferr := out.Flush(); ferr != nil {
				return ferr
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

func save() error {
	k, _, perr := openKernel()
	if perr != nil {
		return perr
	}
	tbl, err := engine.ReadTable(k)
	if err != nil {
		return fmt.Errorf("reading the IPVS table: %w", err)
	}
	return savefmt.Write(os.Stdout, tbl)
}

func restore(dryRun bool) error {
	k, kv, perr := openKernel()
	if perr != nil {
		return perr
	}
	rules, err := savefmt.Parse(os.Stdin, kv)
	if err != nil {
		return fmt.Errorf("reading the rules from stdin: %w (nothing was changed)", err)
	}
	eng := engine.New(k, kv, modprober())
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
