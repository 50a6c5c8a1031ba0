// Command pulumi-language-nodejs is a minimal Node.js language host for the offline test CLI.
//
// Upstream's host (module github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3) is published only as
// pseudo-versions, and the Go module proxy reachable here refuses every one of them ("403 This module version is not
// available"), so it cannot be built on this machine. The part of a language host that `preview`/`up`/`refresh`/
// `destroy` need is small: serve the LanguageRuntime gRPC service and, on Run, start the Node SDK's own program
// launcher (`@pulumi/pulumi/cmd/run`) with the same flags and environment the upstream host passes. Everything that
// runs the program (TypeScript via ts-node, closure serialization, the resource monitor client) is the real
// @pulumi/pulumi code resolved from the program's node_modules. Methods it does not need (plugin install, codegen,
// `pulumi about`) answer Unimplemented.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	pbempty "google.golang.org/protobuf/types/known/emptypb"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/config"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/version"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
)

// exitCodeBail is what @pulumi/pulumi/cmd/run exits with after it has already shown the user an actionable error.
const exitCodeBail = 32

type host struct {
	pulumirpc.UnimplementedLanguageRuntimeServer
	engineAddress string
}

func main() {
	// The engine launches language plugins with flags (-tracing, -v, -logtostderr …) followed by the engine address as
	// the last positional argument; this host needs only the address.
	var engineAddress string
	for _, arg := range os.Args[1:] {
		if !strings.HasPrefix(arg, "-") {
			engineAddress = arg
		}
	}
	if engineAddress == "" {
		fmt.Fprintln(os.Stderr, "pulumi-language-nodejs: missing the engine address argument")
		os.Exit(1)
	}

	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, &host{engineAddress: engineAddress})
			return nil
		},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-nodejs: could not start the gRPC server: %v\n", err)
		os.Exit(1)
	}
	// The engine reads the port from the first line of stdout.
	fmt.Println(handle.Port)
	if err := <-handle.Done; err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-nodejs: gRPC server stopped: %v\n", err)
		os.Exit(1)
	}
}

func (h *host) GetPluginInfo(context.Context, *pbempty.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version.Version}, nil
}

// GetRequiredPlugins and GetRequiredPackages report nothing: this repo's programs use only dynamic resources, whose
// plugin (pulumi-nodejs) the engine loads by itself, and plugin acquisition is disabled offline anyway.
func (h *host) GetRequiredPlugins(
	context.Context, *pulumirpc.GetRequiredPluginsRequest,
) (*pulumirpc.GetRequiredPluginsResponse, error) {
	return &pulumirpc.GetRequiredPluginsResponse{}, nil
}

func (h *host) GetRequiredPackages(
	context.Context, *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	return &pulumirpc.GetRequiredPackagesResponse{}, nil
}

func (h *host) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	info := req.GetInfo()
	if info == nil {
		return nil, errors.New("run request carries no program info (engine too old for this host)")
	}
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		return &pulumirpc.RunResponse{Error: "could not find node on the PATH: " + err.Error()}, nil
	}
	runPath, err := resolveRunPath(ctx, nodeBin, info.GetProgramDirectory())
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	opts := info.GetOptions().AsMap()

	args := []string{}
	if nodeargs, ok := opts["nodeargs"].(string); ok && nodeargs != "" {
		args = append(args, strings.Fields(nodeargs)...)
	}
	args = append(args, runPath)
	flag := func(name, value string) {
		if value != "" {
			args = append(args, "--"+name, value)
		}
	}
	flag("monitor", req.GetMonitorAddress())
	flag("engine", h.engineAddress)
	flag("organization", req.GetOrganization())
	flag("project", req.GetProject())
	flag("stack", req.GetStack())
	flag("pwd", info.GetProgramDirectory())
	flag("root-directory", info.GetRootDirectory())
	if req.GetDryRun() {
		args = append(args, "--dry-run")
	}
	flag("query-mode", strconv.FormatBool(req.GetQueryMode()))
	flag("parallel", strconv.Itoa(int(req.GetParallel())))
	args = append(args, info.GetEntryPoint())
	args = append(args, req.GetArgs()...)

	env, err := programEnv(req, opts)
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}

	// #nosec G204 -- node and the launcher path come from the PATH and the program's own node_modules.
	cmd := exec.CommandContext(ctx, nodeBin, args...)
	cmd.Dir = info.GetProgramDirectory()
	cmd.Env = env
	// Wrapped so exec copies through a pipe: node may switch its inherited stdio to non-blocking mode.
	cmd.Stdout = struct{ *os.File }{os.Stdout}
	cmd.Stderr = struct{ *os.File }{os.Stderr}
	err = cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return &pulumirpc.RunResponse{}, nil
	case errors.As(err, &exitErr) && exitErr.ExitCode() == exitCodeBail:
		return &pulumirpc.RunResponse{Bail: true}, nil
	case errors.As(err, &exitErr):
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("Program exited with non-zero exit code: %d", exitErr.ExitCode())}, nil
	default:
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("could not start node %s: %v", nodeBin, err)}, nil
	}
}

// resolveRunPath finds @pulumi/pulumi/cmd/run the way the program itself would, so the launcher and the program share
// one copy of the SDK.
func resolveRunPath(ctx context.Context, nodeBin, programDir string) (string, error) {
	// #nosec G204 -- fixed script.
	cmd := exec.CommandContext(ctx, nodeBin, "-e", `process.stdout.write(require.resolve("@pulumi/pulumi/cmd/run"))`)
	cmd.Dir = programDir
	out, err := cmd.Output()
	if err != nil {
		detail := ""
		if exitErr, ok := err.(*exec.ExitError); ok {
			detail = strings.TrimSpace(string(exitErr.Stderr))
		}
		return "", fmt.Errorf("cannot find @pulumi/pulumi from %s (is it installed in the program's node_modules?): %v %s",
			programDir, err, detail)
	}
	return filepath.Clean(string(out)), nil
}

// programEnv passes config and TypeScript options the way the upstream host does: config keys in the old
// "<namespace>:config:<name>" form in PULUMI_CONFIG, secret key names in PULUMI_CONFIG_SECRET_KEYS.
func programEnv(req *pulumirpc.RunRequest, opts map[string]any) ([]string, error) {
	cfg := make(map[string]string, len(req.GetConfig()))
	for k, v := range req.GetConfig() {
		key, err := config.ParseKey(k)
		if err != nil {
			return nil, fmt.Errorf("invalid config key %q: %w", k, err)
		}
		cfg[key.Namespace()+":config:"+key.Name()] = v
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("serializing config: %w", err)
	}
	secretKeys := req.GetConfigSecretKeys()
	if secretKeys == nil {
		secretKeys = []string{}
	}
	secretJSON, err := json.Marshal(secretKeys)
	if err != nil {
		return nil, fmt.Errorf("serializing config secret keys: %w", err)
	}
	env := append(os.Environ(), "PULUMI_CONFIG="+string(cfgJSON), "PULUMI_CONFIG_SECRET_KEYS="+string(secretJSON))
	// TypeScript is on unless Pulumi.yaml says `typescript: false`, as upstream.
	if ts, ok := opts["typescript"].(bool); !ok || ts {
		env = append(env, "PULUMI_NODEJS_TYPESCRIPT=true")
	}
	if tsconfig, ok := opts["tsconfig"].(string); ok && tsconfig != "" {
		env = append(env, "PULUMI_NODEJS_TSCONFIG_PATH="+tsconfig)
	}
	return env, nil
}
