// `npm run bench`: how long it takes to put 1 service + N real servers (default 200) on one director, three ways,
// on one lab director (a qemu VM; TCG on machines without KVM, so absolute times are slow — compare the ratios):
//   A  pulumi-ipvs: ONE `pulumi up` of test/bench/fixture (N+1 resources, default parallelism), real pulumi CLI.
//      Also timed: the same up again with nothing to change (the engine's and program's own share, no SSH at all), and
//      the `pulumi destroy` that removes them again.
//   B  one `ipvsadm-restore` of the same table over a single fresh SSH exec (the fastest thing a script can do).
//   C  one fresh SSH connection per `ipvsadm -a` (N+1 sequential `ssh … sudo ipvsadm …`): what @pulumi/command
//      remote.Command users get, one command per resource.
// The table is flushed (ipvsadm -C) between rounds and checked with `ipvsadm -Sn` after each. Round A also reports the
// helper's round trips (helperStats, read from the provider process by test/bench/helperStatsHook.cjs).
// Prints a table; writes JSON to .lab/bench/result-<time>.json (git-ignored).
// Options: --count N (default 200), --keep (leave the VM running, named "bench").
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { startDirector, type LabDirector } from "../lab/director";
import { readVm } from "../lab/vm";
import { E2EStack, repoRoot } from "../e2e/harness";

const VIP = "192.0.2.50";
const args = process.argv.slice(2);
const count = Number(args[args.indexOf("--count") + 1] ?? 0) || 200;

/** Same addresses as fixture/index.ts. */
const rsAddress = (i: number) => `10.20.${Math.floor(i / 250)}.${(i % 250) + 1}`;
const weight = (i: number) => 1 + (i % 5);

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t = process.hrtime.bigint();
  const value = await fn();
  return { ms: Number(process.hrtime.bigint() - t) / 1e6, value };
}

/** A fresh OpenSSH client connection as the unprivileged user, no master/multiplexing: what a script would do. */
function freshSsh(d: LabDirector, command: string, stdin?: string): Promise<void> {
  const knownHosts = path.join(os.tmpdir(), `pulumi-ipvs-bench-known-hosts-${d.port}`);
  writeFileSync(knownHosts, `[${d.host}]:${d.port} ${d.hostKey}\n`);
  const sshArgs = [
    "-i", d.privateKeyPath, "-p", String(d.port),
    "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", `UserKnownHostsFile=${knownHosts}`,
    "-o", "StrictHostKeyChecking=yes", "-o", "ControlMaster=no", "-o", "ControlPath=none", "-o", "LogLevel=ERROR",
    `${d.user}@${d.host}`, command,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn("ssh", sshArgs, { stdio: ["pipe", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (c) => (stderr += c));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`ssh … ${command.slice(0, 80)}: exit ${code}: ${stderr.trim()}`))));
    child.stdin.end(stdin ?? "");
  });
}

async function flush(d: LabDirector): Promise<void> {
  await d.exec("ipvsadm -C");
}

/** Throws unless the director holds exactly the benchmark table. */
async function verify(d: LabDirector, round: string): Promise<void> {
  const save = (await d.exec("ipvsadm -Sn")).stdout;
  const lines = save.split("\n").filter((l) => l.trim() !== "");
  const dests = lines.filter((l) => l.startsWith("-a "));
  const ok =
    lines.length === count + 1 &&
    lines[0]!.startsWith(`-A -t ${VIP}:80 -s wrr`) &&
    dests.length === count &&
    Array.from({ length: count }, (_, i) => `-a -t ${VIP}:80 -r ${rsAddress(i)}:8080 -m -w ${weight(i)}`).every((l) => dests.includes(l));
  if (!ok) throw new Error(`round ${round}: the director's table is not the benchmark table:\n${save.slice(0, 2000)}`);
}

function restoreText(): string {
  return [
    `-A -t ${VIP}:80 -s wrr`,
    ...Array.from({ length: count }, (_, i) => `-a -t ${VIP}:80 -r ${rsAddress(i)}:8080 -m -w ${weight(i)}`),
  ].join("\n") + "\n";
}

async function main(): Promise<void> {
  const keep = args.includes("--keep");
  const statsFile = path.join(os.tmpdir(), `pulumi-ipvs-bench-stats-${process.pid}.json`);
  console.error(`bench: booting a lab director, ${count} real servers per round …`);
  const boot = await timed(() => startDirector(keep ? { name: "bench" } : {}));
  const d = boot.value;
  const rows: Array<{ round: string; what: string; ms: number; sshConnections: number; note?: string }> = [];
  let helper: Record<string, unknown> | undefined;
  let stack: E2EStack | undefined;
  let accel = "?";
  try {
    accel = readVm(d.name)?.accel ?? "?";
    console.error(`bench: director up in ${seconds(boot.ms)} (${d.host}:${d.port}, ${accel})`);
    await flush(d);

    // A: pulumi up (and destroy) of the fixture.
    stack = await E2EStack.create({
      program: path.join(repoRoot, "test", "bench", "fixture"),
      config: {
        host: d.host, port: String(d.port), user: d.user, privateKey: { secret: readFileSync(d.privateKeyPath, "utf8") },
        hostKey: d.hostKey, vip: VIP, count: String(count),
      },
      env: { NODE_OPTIONS: `--require ${path.join(__dirname, "helperStatsHook.cjs")}`, PULUMI_IPVS_BENCH_STATS: statsFile },
    });
    console.error("bench: A  pulumi up …");
    const logins = async () => Number((await d.exec("grep -c 'Accepted publickey' /var/log/sshd.log || true")).stdout.trim());
    let l0 = await logins();
    const up = await timed(() => stack!.up());
    await verify(d, "A");
    const upLogins = (await logins()) - l0;
    helper = existsSync(statsFile) ? (JSON.parse(readFileSync(statsFile, "utf8")) as Record<string, unknown>) : undefined;
    const hs = helper ? (Object.values(helper)[0] as { batches: number; ops: number; uploads: number }) : undefined;
    rows.push({
      round: "A", what: `pulumi up (${count + 1} resources)`, ms: up.ms, sshConnections: upLogins,
      note: hs ? `${hs.batches} helper round trips for ${hs.ops} ops, ${hs.uploads} upload(s)` : undefined,
    });
    // The engine's and program's fixed share: the same up again, nothing to change (check + diff of every resource).
    console.error("bench: A0 pulumi up, no changes …");
    l0 = await logins();
    const noop = await timed(() => stack!.up());
    rows.push({ round: "A0", what: `pulumi up, no changes (${count + 1} unchanged)`, ms: noop.ms, sshConnections: (await logins()) - l0 });
    console.error("bench: A' pulumi destroy …");
    l0 = await logins();
    const destroy = await timed(() => stack!.destroy());
    const left = (await d.exec("ipvsadm -Sn")).stdout.trim();
    if (left !== "") throw new Error(`pulumi destroy left entries:\n${left.slice(0, 500)}`);
    rows.push({ round: "A'", what: `pulumi destroy (${count + 1} resources)`, ms: destroy.ms, sshConnections: (await logins()) - l0 });
    await flush(d);

    // B: one ipvsadm-restore over one fresh SSH exec.
    console.error("bench: B  ipvsadm-restore over one SSH exec …");
    l0 = await logins();
    const restore = await timed(() => freshSsh(d, "sudo -n ipvsadm-restore", restoreText()));
    await verify(d, "B");
    rows.push({ round: "B", what: "ipvsadm-restore, 1 SSH exec", ms: restore.ms, sshConnections: (await logins()) - l0 });
    await flush(d);

    // C: one fresh SSH connection per ipvsadm command, sequential.
    console.error(`bench: C  ${count + 1} × ssh ipvsadm …`);
    l0 = await logins();
    const perCommand = await timed(async () => {
      await freshSsh(d, `sudo -n ipvsadm -A -t ${VIP}:80 -s wrr`);
      for (let i = 0; i < count; i++) await freshSsh(d, `sudo -n ipvsadm -a -t ${VIP}:80 -r ${rsAddress(i)}:8080 -m -w ${weight(i)}`);
    });
    await verify(d, "C");
    rows.push({ round: "C", what: `${count + 1} × fresh ssh + ipvsadm`, ms: perCommand.ms, sshConnections: (await logins()) - l0 });
    await flush(d);
  } finally {
    await stack?.dispose().catch((e) => console.error(`bench: dispose: ${e}`));
    if (!keep) await d.stop();
    if (existsSync(statsFile)) writeFileSync(statsFile, "");
  }

  const a = rows.find((r) => r.round === "A")!.ms;
  const b = rows.find((r) => r.round === "B")!.ms;
  const c = rows.find((r) => r.round === "C")!.ms;
  const out = [
    `pulumi-ipvs bench: 1 service + ${count} real servers on one lab director (qemu ${accel}, host ${os.cpus().length} CPUs)`,
    "",
    `| round | what | wall time | SSH logins | vs B (restore) | vs A (pulumi up) |`,
    `|---|---|---:|---:|---:|---:|`,
    ...rows.map((r) => `| ${r.round} | ${r.what} | ${seconds(r.ms)} | ${r.sshConnections} | ${(r.ms / b).toFixed(1)}× | ${(r.ms / a).toFixed(2)}× |`),
    "",
    ...rows.filter((r) => r.note).map((r) => `${r.round}: ${r.note}`),
    `C / A = ${(c / a).toFixed(1)}  (pulumi up is ${(c / a).toFixed(1)}× faster than one SSH connection per ipvsadm command)`,
    `A / B = ${(a / b).toFixed(1)}  (pulumi up, engine and program start included, vs the bare ipvsadm-restore)`,
  ].join("\n");
  console.log(out);
  const dir = path.join(repoRoot, ".lab", "bench");
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `result-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, JSON.stringify({ count, accel, cpus: os.cpus().length, bootMs: boot.ms, rows, helper }, null, 2));
  console.log(`\n(JSON: ${path.relative(process.cwd(), file)})`);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(`bench failed: ${e instanceof Error ? e.stack : String(e)}`);
    process.exit(1);
  },
);
