// `npm run bench`: how long it takes to put 1 service + N real servers (default 200) on one director, three ways,
// on one lab director (a qemu VM; TCG on machines without KVM, so absolute times are slow — compare the ratios):
//   A  pulumi-ipvs: ONE `pulumi up` of test/bench/fixture (N+1 resources, default parallelism), real pulumi CLI.
//      Also timed: the same up again with nothing to change (the engine's and program's own share, no SSH at all), and
//      the `pulumi destroy` that removes them again.
//   B  one `ipvsadm-restore` of the same table over a single fresh SSH exec (the fastest thing a script can do).
//   C  one fresh SSH connection per `ipvsadm -a` (N+1 sequential `ssh … sudo ipvsadm …`): what @pulumi/command
//      remote.Command users get, one command per resource.
//   F  the engine's floor: the same N+1 resources and dependency shape as no-op dynamic resources (test/bench/floor,
//      one shared provider object): up, no-change up, destroy. Every A round is reported as a ratio to its F round.
// The table is flushed (ipvsadm -C) between rounds and checked with `ipvsadm -Sn` after each. Round A also reports the
// helper's round trips and the provider process's peak RSS (read from it by test/bench/helperStatsHook.cjs).
// With --curve: a scale curve, N = 100, 200, 500, 1000 (or --curve 50,100): time of A's and F's up and the provider
// process's peak RSS, as a table and an SVG chart next to the JSON.
// Prints tables; writes JSON (and the chart) to .lab/bench/result-<time>.* (git-ignored).
// Options: --count N (default 200), --curve [N,N,…], --keep (leave the VM running, named "bench").
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
const curveArg = args.includes("--curve") ? args[args.indexOf("--curve") + 1] : undefined;
const curve = !args.includes("--curve")
  ? []
  : curveArg && /^\d+(,\d+)*$/.test(curveArg)
    ? curveArg.split(",").map(Number)
    : [100, 200, 500, 1000];

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

/** Throws unless the director holds exactly the benchmark table (of `count` real servers). */
async function verify(d: LabDirector, round: string, count: number): Promise<void> {
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

function restoreText(count: number): string {
  return [
    `-A -t ${VIP}:80 -s wrr`,
    ...Array.from({ length: count }, (_, i) => `-a -t ${VIP}:80 -r ${rsAddress(i)}:8080 -m -w ${weight(i)}`),
  ].join("\n") + "\n";
}

/** Logins the director's sshd accepted so far. */
async function sshLogins(d: LabDirector): Promise<number> {
  return Number((await d.exec("grep -c 'Accepted publickey' /var/log/sshd.log || true")).stdout.trim());
}

interface Stats {
  maxRssKiB?: number;
  directors?: Record<string, { batches: number; ops: number; uploads: number }>;
}

const readStats = (file: string): Stats => (existsSync(file) && readFileSync(file, "utf8") ? (JSON.parse(readFileSync(file, "utf8")) as Stats) : {});

/** up, no-change up and destroy of one program through the real CLI, with the provider process's stats. */
async function lifecycle(
  d: LabDirector,
  program: "fixture" | "floor",
  n: number,
  opts: { noChange: boolean },
): Promise<{ up: number; noChange?: number; destroy: number; upStats: Stats; logins: { up: number; noChange?: number; destroy: number } }> {
  const statsFile = path.join(os.tmpdir(), `pulumi-ipvs-bench-stats-${process.pid}-${program}-${n}.json`);
  const stack = await E2EStack.create({
    program: path.join(repoRoot, "test", "bench", program),
    config: {
      host: d.host, port: String(d.port), user: d.user, privateKey: { secret: readFileSync(d.privateKeyPath, "utf8") },
      hostKey: d.hostKey, vip: VIP, count: String(n),
    },
    env: { NODE_OPTIONS: `--require ${path.join(__dirname, "helperStatsHook.cjs")}`, PULUMI_IPVS_BENCH_STATS: statsFile },
  });
  const logins = () => sshLogins(d);
  try {
    let l0 = await logins();
    const up = await timed(() => stack.up());
    const upLogins = (await logins()) - l0;
    const upStats = readStats(statsFile);
    if (program === "fixture") await verify(d, "A", n);
    let noChange: { ms: number } | undefined;
    let noChangeLogins: number | undefined;
    if (opts.noChange) {
      l0 = await logins();
      noChange = await timed(() => stack.up());
      noChangeLogins = (await logins()) - l0;
    }
    l0 = await logins();
    const destroy = await timed(() => stack.destroy());
    const destroyLogins = (await logins()) - l0;
    const left = (await d.exec("ipvsadm -Sn")).stdout.trim();
    if (left !== "") throw new Error(`pulumi destroy of ${program} left entries:\n${left.slice(0, 500)}`);
    return { up: up.ms, noChange: noChange?.ms, destroy: destroy.ms, upStats, logins: { up: upLogins, noChange: noChangeLogins, destroy: destroyLogins } };
  } finally {
    await stack.dispose().catch((e) => console.error(`bench: dispose: ${e}`));
    if (existsSync(statsFile)) writeFileSync(statsFile, "");
  }
}

/** A line chart of the scale curve: up time of pulumi-ipvs and of the floor (left axis), provider RSS (right axis). */
function curveSvg(points: Array<{ n: number; ipvsUp: number; floorUp: number; rssMiB?: number }>): string {
  const W = 640, H = 360, L = 60, R = 60, T = 30, B = 50;
  const maxN = Math.max(...points.map((p) => p.n));
  const maxS = Math.max(...points.flatMap((p) => [p.ipvsUp, p.floorUp])) / 1000 || 1;
  const maxM = Math.max(1, ...points.map((p) => p.rssMiB ?? 0));
  const x = (n: number) => L + ((W - L - R) * n) / maxN;
  const yS = (ms: number) => H - B - ((H - T - B) * ms) / 1000 / maxS;
  const yM = (m: number) => H - B - ((H - T - B) * m) / maxM;
  const line = (ys: number[], color: string, label: string, dy: number) =>
    `<polyline fill="none" stroke="${color}" stroke-width="2" points="${points.map((p, i) => `${x(p.n).toFixed(1)},${ys[i]!.toFixed(1)}`).join(" ")}"/>` +
    points.map((p, i) => `<circle cx="${x(p.n).toFixed(1)}" cy="${ys[i]!.toFixed(1)}" r="3" fill="${color}"/>`).join("") +
    `<text x="${L + 10}" y="${T + dy}" fill="${color}" font-size="12">${label}</text>`;
  const ticks = points.map((p) => `<text x="${x(p.n)}" y="${H - B + 16}" font-size="11" text-anchor="middle">${p.n}</text>`).join("");
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="black"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="black"/>`,
    `<line x1="${W - R}" y1="${T}" x2="${W - R}" y2="${H - B}" stroke="black"/>`,
    ticks,
    `<text x="${(W - R + L) / 2}" y="${H - 12}" font-size="12" text-anchor="middle">real servers (N); resources = N + 1</text>`,
    `<text x="${L - 8}" y="${T - 10}" font-size="11">${maxS.toFixed(0)} s</text><text x="${L - 8}" y="${H - B}" font-size="11" text-anchor="end">0</text>`,
    `<text x="${W - R + 4}" y="${T - 10}" font-size="11">${maxM.toFixed(0)} MiB</text>`,
    line(points.map((p) => yS(p.ipvsUp)), "#c0392b", "pulumi-ipvs pulumi up (s)", 0),
    line(points.map((p) => yS(p.floorUp)), "#2471a3", "no-op floor pulumi up (s)", 16),
    points.every((p) => p.rssMiB !== undefined) ? line(points.map((p) => yM(p.rssMiB!)), "#7d3c98", "provider peak RSS (MiB, right axis)", 32) : "",
    `</svg>`,
  ].join("\n");
}

async function main(): Promise<void> {
  const keep = args.includes("--keep");
  console.error(`bench: booting a lab director, ${count} real servers per round …`);
  const boot = await timed(() => startDirector(keep ? { name: "bench" } : {}));
  const d = boot.value;
  const rows: Array<{ round: string; what: string; ms: number; sshConnections: number; floorMs?: number; note?: string }> = [];
  const points: Array<{ n: number; ipvsUp: number; floorUp: number; rssMiB?: number; floorRssMiB?: number }> = [];
  let helper: Stats | undefined;
  let accel = "?";
  try {
    accel = readVm(d.name)?.accel ?? "?";
    console.error(`bench: director up in ${seconds(boot.ms)} (${d.host}:${d.port}, ${accel})`);
    await flush(d);

    // F first: the floor of the same run, so every A round has its ratio.
    console.error("bench: F  no-op floor: up, no-change up, destroy …");
    const floor = await lifecycle(d, "floor", count, { noChange: true });
    // A: pulumi up, the same again with nothing to change (check + diff only, no SSH), destroy.
    console.error("bench: A  pulumi-ipvs: up, no-change up, destroy …");
    const ipvs = await lifecycle(d, "fixture", count, { noChange: true });
    helper = ipvs.upStats;
    const hs = Object.values(ipvs.upStats.directors ?? {})[0];
    const rss = ipvs.upStats.maxRssKiB ? `, provider peak RSS ${(ipvs.upStats.maxRssKiB / 1024).toFixed(0)} MiB` : "";
    rows.push(
      { round: "A", what: `pulumi up (${count + 1} resources)`, ms: ipvs.up, floorMs: floor.up, sshConnections: ipvs.logins.up,
        note: hs ? `${hs.batches} helper round trips for ${hs.ops} ops, ${hs.uploads} upload(s)${rss}` : undefined },
      { round: "A0", what: `pulumi up, no changes (${count + 1} unchanged)`, ms: ipvs.noChange!, floorMs: floor.noChange, sshConnections: ipvs.logins.noChange! },
      { round: "A'", what: `pulumi destroy (${count + 1} resources)`, ms: ipvs.destroy, floorMs: floor.destroy, sshConnections: ipvs.logins.destroy },
      { round: "F", what: `no-op floor: pulumi up (${count + 1} resources)`, ms: floor.up, sshConnections: floor.logins.up },
      { round: "F0", what: "no-op floor: pulumi up, no changes", ms: floor.noChange!, sshConnections: floor.logins.noChange! },
      { round: "F'", what: "no-op floor: pulumi destroy", ms: floor.destroy, sshConnections: floor.logins.destroy },
    );
    await flush(d);

    // B: one ipvsadm-restore over one fresh SSH exec.
    console.error("bench: B  ipvsadm-restore over one SSH exec …");
    let l0 = await sshLogins(d);
    const logins = () => sshLogins(d);
    const restore = await timed(() => freshSsh(d, "sudo -n ipvsadm-restore", restoreText(count)));
    await verify(d, "B", count);
    rows.push({ round: "B", what: "ipvsadm-restore, 1 SSH exec", ms: restore.ms, sshConnections: (await logins()) - l0 });
    await flush(d);

    // C: one fresh SSH connection per ipvsadm command, sequential.
    console.error(`bench: C  ${count + 1} × ssh ipvsadm …`);
    l0 = await logins();
    const perCommand = await timed(async () => {
      await freshSsh(d, `sudo -n ipvsadm -A -t ${VIP}:80 -s wrr`);
      for (let i = 0; i < count; i++) await freshSsh(d, `sudo -n ipvsadm -a -t ${VIP}:80 -r ${rsAddress(i)}:8080 -m -w ${weight(i)}`);
    });
    await verify(d, "C", count);
    rows.push({ round: "C", what: `${count + 1} × fresh ssh + ipvsadm`, ms: perCommand.ms, sshConnections: (await logins()) - l0 });
    await flush(d);

    for (const n of curve) {
      console.error(`bench: curve N = ${n}: floor up + destroy, pulumi-ipvs up + destroy …`);
      const f = await lifecycle(d, "floor", n, { noChange: false });
      const a = await lifecycle(d, "fixture", n, { noChange: false });
      await flush(d);
      const mib = (kib?: number) => (kib ? kib / 1024 : undefined);
      points.push({ n, ipvsUp: a.up, floorUp: f.up, rssMiB: mib(a.upStats.maxRssKiB), floorRssMiB: mib(f.upStats.maxRssKiB) });
    }
  } finally {
    if (!keep) await d.stop();
  }

  const a = rows.find((r) => r.round === "A")!.ms;
  const b = rows.find((r) => r.round === "B")!.ms;
  const c = rows.find((r) => r.round === "C")!.ms;
  const ratio = (x: number, y?: number) => (y ? `${(x / y).toFixed(2)}×` : "");
  const out = [
    `pulumi-ipvs bench: 1 service + ${count} real servers on one lab director (qemu ${accel}, host ${os.cpus().length} CPUs)`,
    "",
    `| round | what | wall time | SSH logins | vs B (restore) | vs A (pulumi up) | vs its floor |`,
    `|---|---|---:|---:|---:|---:|---:|`,
    ...rows.map((r) => `| ${r.round} | ${r.what} | ${seconds(r.ms)} | ${r.sshConnections} | ${(r.ms / b).toFixed(1)}× | ${(r.ms / a).toFixed(2)}× | ${ratio(r.ms, r.floorMs)} |`),
    "",
    ...rows.filter((r) => r.note).map((r) => `${r.round}: ${r.note}`),
    `C / A = ${(c / a).toFixed(1)}  (pulumi up is ${(c / a).toFixed(1)}× faster than one SSH connection per ipvsadm command)`,
    `A / B = ${(a / b).toFixed(1)}  (pulumi up, engine and program start included, vs the bare ipvsadm-restore)`,
    ...(points.length
      ? [
          "",
          "Scale curve (one pulumi up each, fresh stack):",
          "",
          "| N | pulumi-ipvs up | floor up | vs floor | provider peak RSS | floor's provider peak RSS |",
          "|---:|---:|---:|---:|---:|---:|",
          ...points.map((p) => `| ${p.n} | ${seconds(p.ipvsUp)} | ${seconds(p.floorUp)} | ${ratio(p.ipvsUp, p.floorUp)} | ${p.rssMiB?.toFixed(0) ?? "?"} MiB | ${p.floorRssMiB?.toFixed(0) ?? "?"} MiB |`),
        ]
      : []),
  ].join("\n");
  console.log(out);
  const dir = path.join(repoRoot, ".lab", "bench");
  mkdirSync(dir, { recursive: true });
  const base = path.join(dir, `result-${new Date().toISOString().replace(/[:.]/g, "-")}`);
  writeFileSync(`${base}.json`, JSON.stringify({ count, accel, cpus: os.cpus().length, bootMs: boot.ms, rows, helper, curve: points }, null, 2));
  if (points.length) writeFileSync(`${base}.svg`, curveSvg(points));
  console.log(`\n(JSON: ${path.relative(process.cwd(), base)}.json${points.length ? `, chart: ${path.relative(process.cwd(), base)}.svg` : ""})`);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(`bench failed: ${e instanceof Error ? e.stack : String(e)}`);
    process.exit(1);
  },
);
