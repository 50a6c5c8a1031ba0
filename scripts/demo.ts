// `npm run demo` — the quickstart, for real, on this machine:
//   1. boots a lab director (a qemu VM with a real Linux kernel running IPVS, OpenSSH and the real ipvsadm),
//      named "demo", with three real servers (network namespaces running httpd) and the VIP 192.0.2.10;
//   2. runs `pulumi up` of examples/quickstart/index.ts on a fresh local stack "demo". Everything Pulumi writes stays in
//      .pulumi-state/demo (git-ignored): the project file (project/Pulumi.yaml, whose `main` is the example — the root
//      Pulumi.yaml does the same for `npm run pulumi`), the stack config project/Pulumi.demo.yaml (the SSH key is stored
//      as a secret, encrypted with PULUMI_CONFIG_PASSPHRASE, default "pulumi-ipvs-demo") and the file backend state/;
//   3. prints the director's table (`ipvsadm -Ln`) and the answers of real HTTP requests sent through the VIP.
// `npm run demo -- down` destroys the stack, removes it and stops the VM. `npm run demo -- status` shows what runs.
//
// Which pulumi: your own `pulumi` on PATH if there is one (with PATH's node), else the project's offline-built CLI
// (test/e2e/pulumi-cli/build.sh → .pulumi-cli/bin, needs Go; built once, in a few minutes). Either way nothing touches
// your Pulumi login: the backend is the local folder above.
//
// Fresh clone: just `npm run demo`. Its npm script runs scripts/deps.sh (npm ci when node_modules is missing or stale)
// before tsx starts this file, and this file runs `npm run build` when dist/ or the helper binaries are missing
// (Go builds the helper). Host tools the lab needs: qemu-system-x86_64, cpio,
// ssh (see test/lab/image/build-image.sh); the first run builds the VM image.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";

const root = path.resolve(__dirname, "..");
const NAME = "demo";
const VIP = "192.0.2.10";
const STACK = "demo";
const demoDir = path.join(root, ".pulumi-state", "demo");
const projectDir = path.join(demoDir, "project");
const stateDir = path.join(demoDir, "state");
const entry = path.join(root, "examples", "quickstart", "index.ts");

const say = (s: string) => process.stdout.write(`${s}\n`);
const step = (s: string) => process.stdout.write(`\n==> ${s}\n`);

function run(cmd: string, args: string[], opts: { cwd?: string; input?: string; env?: NodeJS.ProcessEnv } = {}): void {
  const res = spawnSync(cmd, args, {
    cwd: opts.cwd ?? (cmd.endsWith("pulumi") ? projectDir : root),
    env: opts.env ?? process.env,
    input: opts.input,
    stdio: [opts.input === undefined ? "inherit" : "pipe", "inherit", "inherit"],
  });
  if (res.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (exit ${res.status ?? res.signal})`);
}

/** npm run build when a fresh clone lacks it (`npm run demo` ran scripts/deps.sh, i.e. npm ci, before this). */
function ensureBuilt(): void {
  const built = ["dist/src/index.js", "dist/provider/index.js", "provider/helper/bin/SHA256SUMS"].every((f) => existsSync(path.join(root, f)));
  if (!built) {
    step("npm run build (dist/ or the helper binaries missing)");
    run("npm", ["run", "build"]);
  }
}

/** The pulumi binary and the environment to run it in: the user's own, or the project's offline build. */
function pulumiCli(): { bin: string; env: NodeJS.ProcessEnv; which: string } {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PULUMI_BACKEND_URL: `file://${stateDir}`,
    PULUMI_CONFIG_PASSPHRASE: process.env.PULUMI_CONFIG_PASSPHRASE ?? (process.env.PULUMI_CONFIG_PASSPHRASE_FILE ? undefined : "pulumi-ipvs-demo"),
    PULUMI_SKIP_UPDATE_CHECK: "true",
  };
  const own = spawnSync("sh", ["-c", "command -v pulumi"], { encoding: "utf8" });
  if (own.status === 0 && own.stdout.trim() && !process.env.PULUMI_IPVS_DEMO_BUILTIN_CLI) {
    return { bin: own.stdout.trim(), env, which: `your pulumi (${own.stdout.trim()})` };
  }
  step("building the project's pulumi CLI (once; no pulumi on PATH)");
  execFileSync("bash", [path.join(root, "test/e2e/pulumi-cli/build.sh")], { stdio: "inherit" });
  const bin = path.join(root, ".pulumi-cli", "bin");
  return {
    bin: path.join(bin, "pulumi"),
    env: {
      ...env,
      PATH: [bin, path.dirname(process.execPath), process.env.PATH ?? ""].join(path.delimiter),
      PULUMI_HOME: path.join(root, ".pulumi-cli", "home"),
      PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    },
    which: `the project's pulumi (${path.join(bin, "pulumi")})`,
  };
}

async function up(): Promise<void> {
  ensureBuilt();
  // Loaded after the build check: the lab modules are TypeScript run by tsx, but keep the order obvious.
  const { attachDirector, startDirector } = await import("../test/lab/director");
  const { readVm } = await import("../test/lab/vm");
  const { addRealServers, addVip, httpRequests } = await import("../test/lab/realServers");
  const { ipvsadmList } = await import("../test/lab/ipvsadm");

  step(`lab director "${NAME}"`);
  let d;
  if (readVm(NAME)) {
    d = await attachDirector(NAME);
    say(`already running on ${d.host}:${d.port}`);
  } else {
    const t = Date.now();
    d = await startDirector({ name: NAME });
    say(`booted in ${((Date.now() - t) / 1000).toFixed(1)} s, SSH on ${d.host}:${d.port} (user ${d.user}, sudo)`);
  }
  const have = Number((await d.exec("ls /run/netns 2>/dev/null | grep -c '^rs[0-9]' || true")).stdout.trim());
  const servers = have >= 3 ? [] : await addRealServers(d, 3 - have);
  await addVip(d, VIP);
  const backends = ["10.10.0.11", "10.10.0.12", "10.10.0.13"];
  say(`real servers ${backends.join(", ")} (httpd in namespaces rs1..rs3${servers.length ? "" : ", already there"}), VIP ${VIP}`);

  const cli = pulumiCli();
  step(`pulumi up of examples/quickstart with ${cli.which}, stack "${STACK}"`);
  mkdirSync(stateDir, { recursive: true });
  mkdirSync(projectDir, { recursive: true });
  writeFileSync(
    path.join(projectDir, "Pulumi.yaml"),
    `# Written by scripts/demo.ts: runs the quickstart example in place.\nname: pulumi-ipvs\nruntime:\n  name: nodejs\n  options:\n    typescript: true\nmain: ${JSON.stringify(entry)}\n`,
  );
  const pulumi = (args: string[], input?: string) => run(cli.bin, args, { env: cli.env, input });
  const cfg = ["--stack", STACK];
  pulumi(["stack", "select", "--create", STACK, "--non-interactive"]);
  const set = (key: string, value: string) => pulumi(["config", "set", ...cfg, "--plaintext", key, "--", value]);
  set("host", d.host);
  set("port", String(d.port));
  set("user", d.user);
  set("hostKey", d.hostKey);
  set("vip", VIP);
  set("backends", JSON.stringify(backends));
  set("scheduler", "rr");
  // The key goes in through stdin, encrypted into the config file.
  pulumi(["config", "set", ...cfg, "--secret", "privateKey"], readFileSync(d.privateKeyPath, "utf8"));
  pulumi(["up", "--yes", "--non-interactive", ...cfg]);

  step("the director's table: ipvsadm -Ln");
  process.stdout.write(await ipvsadmList(d));
  step(`6 HTTP requests from the client namespace to ${VIP}:80`);
  const answers = await httpRequests(d, VIP, 80, 6);
  answers.forEach((a, i) => say(`  request ${i + 1}: answered by ${a}`));

  step("what next");
  say(`  look inside:   npm run lab -- exec --name ${NAME} -- ipvsadm -Ln --stats`);
  say(`  change it:     edit examples/quickstart/index.ts, then npm run demo again (an in-place update)`);
  say(`  tear it down:  npm run demo -- down     (pulumi destroy, stack rm, stops the VM)`);
}

async function down(): Promise<void> {
  const { attachDirector } = await import("../test/lab/director");
  const { readVm } = await import("../test/lab/vm");
  const running = readVm(NAME);
  if (existsSync(path.join(stateDir, ".pulumi", "stacks")) && existsSync(path.join(projectDir, "Pulumi.yaml"))) {
    const cli = pulumiCli();
    const cfg = ["--stack", STACK];
    if (running) {
      step(`pulumi destroy (stack "${STACK}")`);
      run(cli.bin, ["destroy", "--yes", "--non-interactive", ...cfg], { env: cli.env });
      run(cli.bin, ["stack", "rm", "--yes", "--non-interactive", "--stack", STACK], { env: cli.env });
    } else {
      // Nothing left to delete on a director that is gone: drop the stack and its state.
      step(`director not running: removing stack "${STACK}" without contacting it`);
      run(cli.bin, ["stack", "rm", "--yes", "--force", "--non-interactive", "--stack", STACK], { env: cli.env });
    }
  }
  if (running) {
    step(`stopping lab director "${NAME}"`);
    await (await attachDirector(NAME)).stop();
  }
  rmSync(demoDir, { recursive: true, force: true });
  say("demo torn down");
}

async function status(): Promise<void> {
  const { readVm } = await import("../test/lab/vm");
  const rec = readVm(NAME);
  say(rec ? `lab director "${NAME}" runs on ${rec.host}:${rec.port} (pid ${rec.pid})` : `lab director "${NAME}" is not running`);
  say(existsSync(path.join(stateDir, ".pulumi", "stacks")) ? `stack state in ${stateDir}` : "no demo stack");
}

const cmd = process.argv[2] ?? "up";
const commands: Record<string, () => Promise<void>> = { up, down, status };
if (!commands[cmd]) {
  process.stderr.write("usage: npm run demo [-- up|down|status]\n");
  process.exit(2);
}
commands[cmd]!().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`\ndemo ${cmd} failed: ${e instanceof Error ? e.message : String(e)}\n`);
    if (cmd === "up") process.stderr.write("clean up with: npm run demo -- down\n");
    process.exit(1);
  },
);
