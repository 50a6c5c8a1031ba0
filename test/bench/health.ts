// The health-check benchmark (issue 27, item 5), part of `npm run bench` (or alone: `npx tsx test/bench/health.ts`,
// or `npm run bench -- --health-only`). On one lab director, in the same run, against the same real servers:
//   - `ipvs-helper health` (the checks recorded in the ledger by helper requests, as an `up` records them) and
//   - keepalived (Debian's, in the lab image; `keepalived --check`, one virtual_server per service, a real_server
//     block per real server with HTTP_GET or TCP_CHECK: delay_loop and delay_before_retry = the interval,
//     connect_timeout = the timeout, retry = fall − 1, the same weights, inhibit_on_failure = our quiesce)
// each on its own clean table, one after the other, never at once. Per check kind (http every 2 s, tcp every 1 s) and
// scale (200 and 2,000 real servers, 100 per service): the CPU time (utime + stime, /proc/PID/stat) of the checker's
// processes (keepalived: all of them, parent and checker child) over a fixed window after a warm-up, their RSS (VmRSS
// at the window's end, VmHWM), and the probes the real servers saw. At 200 (--detect-at): detection latency (one
// real server's address stops answering: an nft drop rule → weight 0 in ipvsadm), N samples for p50/p99, for both;
// and, at the largest scale, for ours an `up` that changes one check of all of them (an ensureDest), which must
// take effect without a restart: no other server's state or weight moves, and no probe of the others pauses (the
// real servers record the longest gap between two probes of each address).
//
// Real servers: one network namespace behind the director owns 10.30.0.0/16 (an AnyIP local route), and one small
// server (test/bench/health/rsd.go, built here with the host's Go) answers on every address: thousands of real
// servers, one process, no fork per probe. The director reaches them through one veth (one neighbour entry).
//
// The VM is a qemu guest with one vCPU (TCG where there is no KVM), on a host other jobs share: absolute figures are
// slow and noisy; the ratios between the two checkers, measured minutes apart in the same guest, are what count.
// Options (after `npm run bench --` or on the command line here): --quick (20 and 200 real servers, short window,
// 5 samples), --scales N,N (instead: e.g. --scales 2000 for the memory and the reload at 2,000 alone, without
// detection), --window S (default 30), --samples N (default 20), --repeat R (default 1: the CPU windows R times,
// the two checkers in alternating order, so that a host load that drifts over the run weighs on both alike; the
// ratios are pooled over the repeats, and each one's is shown), --keep (leave the VM running as "bench-health"),
// --name N (use the running lab director N, e.g. from `npm run lab -- up --name N --memory 1024`, and leave it).
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { attachDirector, startDirector, type LabDirector } from "../lab/director";
import { killAllIn } from "../lab/realServers";
import { readVm } from "../lab/vm";
import { applyOk, destOp, HELPER, installHelper, svcOp, tcp } from "../lab/helper/helperLab";

const ROOT = path.resolve(__dirname, "../..");
const IP = "/sbin/ip";
const RSD = "/usr/local/bin/hb-rsd";
const DIR = "/run/hb";
const OWNER = "bench/health/checks";
const PER_SERVICE = 100;
const TARGET_RSS_MIB = 40;

type Kind = "http" | "tcp";

/** The check each kind runs (the issue's: http every 2 s, tcp every 1 s); rise 1 because keepalived has no rise. */
const CHECKS: Record<Kind, { type: Kind; port: number; intervalSeconds: number; timeoutSeconds: number; rise: number; fall: number; onFailure: string; http?: object }> = {
  http: { type: "http", port: 80, intervalSeconds: 2, timeoutSeconds: 1, rise: 1, fall: 3, onFailure: "quiesce", http: { path: "/", method: "GET", expectStatus: "200" } },
  tcp: { type: "tcp", port: 80, intervalSeconds: 1, timeoutSeconds: 0.5, rise: 1, fall: 3, onFailure: "quiesce" },
};
/** The p99 target: fall × interval + timeout + 1 s. */
const boundMs = (k: Kind) => (CHECKS[k].fall * CHECKS[k].intervalSeconds + CHECKS[k].timeoutSeconds + 1) * 1000;

const rsAddress = (i: number) => `10.30.${Math.floor(i / 250)}.${(i % 250) + 1}`;
const vipOf = (i: number) => `192.0.2.${100 + Math.floor(i / PER_SERVICE)}`;
const weightOf = (i: number) => 1 + (i % 5);

export interface HealthBenchOptions {
  quick?: boolean;
  keep?: boolean;
  windowSeconds?: number;
  samples?: number;
  /** How many times each CPU window is measured, the checkers' order alternating (default 1). */
  repeats?: number;
  /** The scale at which detection latency is measured (default 200, when it is one of the scales). */
  detectAt?: number;
  /** The scales to measure (default 200 and 2,000; --quick: 20 and 200). */
  scales?: number[];
  /** A running lab director to use (and leave running) instead of booting one: for iterating on the bench. */
  name?: string;
}

type Checker = "ours" | "keepalived";

interface Usage {
  checker: Checker;
  kind: Kind;
  n: number;
  /** Which repeat (0-based, --repeat) the window was. */
  repeat: number;
  /** CPU seconds the checker's processes used in the window, and the window's length (guest clock). */
  cpuSeconds: number;
  /** Of cpuSeconds, the kernel's (stime: system calls, and the network stack's work done in them). */
  sysSeconds: number;
  windowSeconds: number;
  rssKiB: number;
  hwmKiB: number;
  processes: number;
  /**
   * TCP sockets that went into TIME_WAIT on the director in the window's last 10 s (50–60 s of their 60 left): this
   * checker's, not the last one's. A prober that closes gracefully leaves one per probe.
   */
  timeWait: number;
  /** The guest's busy share over the window (all processes and the kernel), 0..1. */
  vmBusy: number;
  /** Probes the real servers saw in the window, and how many addresses were probed. */
  probes: number;
  probed: number;
  maxGapMs: number;
  /** Real servers at weight 0 after the window: each one a false alarm (every real server answers). */
  falseDown: number;
}

interface Latency {
  checker: Checker;
  kind: Kind;
  n: number;
  samplesMs: number[];
  /** Samples not at weight 0 within the bound + 20 s. */
  missed: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The p-th percentile (nearest rank) of the samples, a miss counting as infinitely late. */
const pct = (l: { samplesMs: number[]; missed: number }, p: number) => {
  const s = [...l.samplesMs, ...Array<number>(l.missed).fill(Infinity)].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? Infinity;
};

/** Builds the real servers' program for the guest (linux/amd64, static). */
function buildRsd(): string {
  const out = path.join(mkdtempSync(path.join(os.tmpdir(), "pulumi-ipvs-bench-rsd-")), "hb-rsd");
  execFileSync("go", ["build", "-trimpath", "-o", out, path.join(__dirname, "health", "rsd.go")], {
    env: { ...process.env, CGO_ENABLED: "0", GOOS: "linux", GOARCH: "amd64" },
    cwd: os.tmpdir(), // outside any module: rsd.go needs only the standard library
    stdio: ["ignore", "ignore", "inherit"],
  });
  return out;
}

/** The namespace owning 10.30.0.0/16, its nft chain for blocking one address, and rsd answering on all of it. */
async function setupRealServers(d: LabDirector): Promise<void> {
  await d.exec(`set -e
mkdir -p ${DIR}
# Again on a director kept from an earlier run (--name): the old namespace, veth, route and rsd go first.
if [ -e /run/netns/hbrs ]; then
  ${killAllIn("hbrs")}
  ${IP} netns del hbrs; ${IP} link del hbrs0 2>/dev/null || true; ${IP} route del 10.30.0.0/16 2>/dev/null || true
fi
${IP} netns add hbrs
${IP} link add hbrs0 type veth peer name eth0 netns hbrs
${IP} addr add 10.29.0.1/30 dev hbrs0
${IP} link set hbrs0 up
${IP} -n hbrs link set lo up
${IP} -n hbrs link set eth0 up
${IP} -n hbrs addr add 10.29.0.2/30 dev eth0
${IP} -n hbrs route add local 10.30.0.0/16 dev lo
${IP} route add 10.30.0.0/16 via 10.29.0.2
${IP} netns exec hbrs nft add table inet hb
${IP} netns exec hbrs nft add chain inet hb in '{ type filter hook input priority 0; }'
ulimit -n 65536
setsid ${IP} netns exec hbrs ${RSD} -listen :80 -gaps ${DIR}/gaps </dev/null >${DIR}/rsd.log 2>&1 &
echo $! > ${DIR}/rsd.pid
i=0; until printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 2 10.30.0.1 80 | grep -q '200 OK'; do
  i=$((i+1)); [ $i -lt 100 ] || { echo "rsd does not answer" >&2; cat ${DIR}/rsd.log >&2; exit 1; }; sleep 0.1
done`);
}

/** Asks rsd for the probes since the last dump: per address the longest gap and the count. */
async function probeGaps(d: LabDirector): Promise<Map<string, { maxGapMs: number; probes: number }>> {
  const { stdout } = await d.exec(`set -e; rm -f ${DIR}/gaps; p=$(${IP} netns pids hbrs | head -n1); kill -USR1 $p
i=0; until [ -e ${DIR}/gaps ]; do i=$((i+1)); [ $i -lt 100 ] || { echo "rsd wrote no gaps" >&2; exit 1; }; sleep 0.1; done; cat ${DIR}/gaps`);
  const out = new Map<string, { maxGapMs: number; probes: number }>();
  for (const line of stdout.split("\n")) {
    const [a, g, c] = line.trim().split(" ");
    if (a && g && c) out.set(a, { maxGapMs: Number(g), probes: Number(c) });
  }
  return out;
}

function keepalivedConf(kind: Kind, n: number): string {
  const c = CHECKS[kind];
  const check =
    kind === "http"
      ? `    HTTP_GET {\n      url {\n        path /\n        status_code 200\n      }\n      connect_timeout ${c.timeoutSeconds}\n      retry ${c.fall - 1}\n      delay_before_retry ${c.intervalSeconds}\n    }`
      : `    TCP_CHECK {\n      connect_timeout ${c.timeoutSeconds}\n      retry ${c.fall - 1}\n      delay_before_retry ${c.intervalSeconds}\n    }`;
  const out = ["global_defs {\n  router_id bench\n}"];
  for (let s = 0; s * PER_SERVICE < n; s++) {
    out.push(`virtual_server ${vipOf(s * PER_SERVICE)} 80 {\n  delay_loop ${c.intervalSeconds}\n  lb_algo wrr\n  lb_kind NAT\n  protocol TCP`);
    for (let i = s * PER_SERVICE; i < Math.min(n, (s + 1) * PER_SERVICE); i++) {
      out.push(`  real_server ${rsAddress(i)} 80 {\n    weight ${weightOf(i)}\n    inhibit_on_failure\n${check}\n  }`);
    }
    out.push("}");
  }
  return out.join("\n") + "\n";
}

/** Ours: the services and checked real servers as the provider's `up` sends them, in one request. */
function ourOps(kind: Kind, n: number, changed?: { index: number; check: object }): object[] {
  const ops: object[] = [];
  for (let s = 0; s * PER_SERVICE < n; s++) ops.push(svcOp(tcp(vipOf(s * PER_SERVICE), 80), { scheduler: "wrr" }, { owner: OWNER }));
  for (let i = 0; i < n; i++) {
    const check = changed?.index === i ? changed.check : CHECKS[kind];
    ops.push(destOp(tcp(vipOf(i), 80), { address: rsAddress(i), port: 80, forwarding: "nat", weight: weightOf(i) }, { owner: OWNER, healthCheck: check }));
  }
  return ops;
}

/** Pids of the running checker: ours (one process) or every keepalived process. */
async function checkerPids(d: LabDirector, who: Checker): Promise<number[]> {
  const comm = who === "ours" ? "ipvs-helper" : "keepalived";
  const { stdout } = await d.exec(`for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = ${comm} ] && echo \${p#/proc/}; done; true`);
  return stdout.split("\n").filter(Boolean).map(Number);
}

async function startChecker(d: LabDirector, who: Checker, kind: Kind, n: number): Promise<void> {
  if (who === "keepalived") {
    await d.exec(`cat > ${DIR}/keepalived.conf`, { stdin: keepalivedConf(kind, n) });
    await d.exec(`set -e; keepalived -t -f ${DIR}/keepalived.conf
setsid keepalived --dont-fork --log-console --check -f ${DIR}/keepalived.conf -p ${DIR}/keepalived.pid -c ${DIR}/checkers.pid </dev/null >${DIR}/keepalived.log 2>&1 &`);
  } else {
    await applyOk(d, ourOps(kind, n));
    await d.exec(`setsid ${HELPER} health </dev/null >${DIR}/health.log 2>&1 &`);
  }
  // Started when the table holds every real server (keepalived builds it; ours was built by the request).
  await d.exec(`i=0; until [ "$(ipvsadm -Sn | grep -c '^-a ')" = ${n} ]; do
  i=$((i+1)); [ $i -lt 600 ] || { echo "the table never held ${n} real servers" >&2; ipvsadm -Sn | tail -n 5 >&2; tail -n 20 ${DIR}/*.log >&2; exit 1; }; sleep 0.2; done`, { timeoutMs: 200_000 });
}

/** Stops the checker (every pid, TERM, waited for) and leaves a clean table, ledger and state. */
async function stopChecker(d: LabDirector): Promise<void> {
  const pids = [...(await checkerPids(d, "ours")), ...(await checkerPids(d, "keepalived"))];
  await d.exec(`for p in ${pids.join(" ")}; do kill $p 2>/dev/null || true; done
i=0; for p in ${pids.join(" ")}; do while [ -e /proc/$p ]; do i=$((i+1)); [ $i -lt 300 ] || { echo "checker $p did not stop" >&2; exit 1; }; sleep 0.1; done; done
ipvsadm -C; rm -rf /var/lib/pulumi-ipvs /var/lib/pulumi-ipvs-health; ${IP} netns exec hbrs nft flush chain inet hb in`);
}

/** CPU and memory of the checker over `windowSeconds`, the guest's load, and the probes the real servers saw. */
async function measureUsage(d: LabDirector, who: Checker, kind: Kind, n: number, windowSeconds: number): Promise<Omit<Usage, "repeat">> {
  const pids = await checkerPids(d, who);
  if (pids.length === 0) throw new Error(`${who}: no checker process running (log: ${(await d.exec(`tail -n 20 ${DIR}/*.log`)).stdout})`);
  await probeGaps(d); // starts the real servers' count with the window
  // One script in the guest, so the window is the guest's own clock: ticks of the pids (utime + stime, fields 14
  // and 15 after a comm without spaces), the guest's busy and total ticks (/proc/stat), before and after.
  const { stdout } = await d.exec(`set -e
ticks() { u=0; s=0; for p in ${pids.join(" ")}; do set -- $(cut -d' ' -f14,15 /proc/$p/stat); u=$((u + $1)); s=$((s + $2)); done; echo $u $s; }
cpu() { awk '/^cpu / { print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9 }' /proc/stat; }
t0=$(ticks); c0=$(cpu); u0=$(cut -d' ' -f1 /proc/uptime)
sleep ${windowSeconds}
t1=$(ticks); c1=$(cpu); u1=$(cut -d' ' -f1 /proc/uptime)
rss=0; hwm=0; for p in ${pids.join(" ")}; do
  rss=$((rss + $(awk '/^VmRSS/ { print $2 }' /proc/$p/status))); hwm=$((hwm + $(awk '/^VmHWM/ { print $2 }' /proc/$p/status)))
done
echo "$t0 $t1 $c0 $c1 $u0 $u1 $rss $hwm $(ss -Htano state time-wait | grep -c 'timewait,5[0-9]sec' || true)"`, { timeoutMs: (windowSeconds + 60) * 1000 });
  const [user0, sys0, user1, sys1, b0, a0, b1, a1, u0, u1, rss, hwm, timeWait] = stdout.trim().split(/\s+/).map(Number) as number[];
  const gaps = await probeGaps(d);
  const save = (await d.exec("ipvsadm -Sn")).stdout.split("\n").filter((l) => l.startsWith("-a "));
  const values = [...gaps.values()];
  return {
    checker: who, kind, n,
    cpuSeconds: (user1! + sys1! - user0! - sys0!) / 100, // USER_HZ
    sysSeconds: (sys1! - sys0!) / 100,
    windowSeconds: u1! - u0!,
    rssKiB: rss!, hwmKiB: hwm!, processes: pids.length, timeWait: timeWait!,
    vmBusy: (b1! - b0!) / (a1! - a0!),
    probes: values.reduce((s, g) => s + g.probes, 0),
    probed: gaps.size,
    maxGapMs: Math.max(0, ...values.map((g) => g.maxGapMs)),
    falseDown: save.filter((l) => / -w 0$/.test(l)).length,
  };
}

/** The weight ipvsadm shows for real server i (polled in the guest: the shell loop below). */
const weightCmd = (i: number) => `ipvsadm -Ln -t ${vipOf(i)}:80 | awk '$2 == "${rsAddress(i)}:80" { print $4 }'`;

/**
 * One detection: drops everything to real server i's address (it stops answering, as a dead host) and polls ipvsadm
 * in the guest every 0.1 s until its weight is 0; returns the milliseconds (undefined when it took longer than the
 * bound + 20 s: a miss, counted as such), then lets it answer again and waits for its declared weight (the next
 * sample starts from a healthy table).
 */
async function detect(d: LabDirector, i: number, kind: Kind): Promise<number | undefined> {
  const limitCs = Math.ceil((boundMs(kind) + 20_000) / 10);
  const { stdout } = await d.exec(`set -e
start=$(cut -d' ' -f1 /proc/uptime | tr -d .)
${IP} netns exec hbrs nft add rule inet hb in ip daddr ${rsAddress(i)} drop
while :; do
  now=$(cut -d' ' -f1 /proc/uptime | tr -d .)
  [ "$(${weightCmd(i)})" != 0 ] || { echo $(( (now - start) * 10 )); break; }
  [ $((now - start)) -lt ${limitCs} ] || { echo missed; break; }
  sleep 0.1
done
${IP} netns exec hbrs nft flush chain inet hb in
i=0; until [ "$(${weightCmd(i)})" = ${weightOf(i)} ]; do
  i=$((i+1)); [ $i -lt 600 ] || { echo "${rsAddress(i)} not back at weight ${weightOf(i)}" >&2; tail -n 5 ${DIR}/*.log >&2; exit 1; }; sleep 0.1
done`, { timeoutMs: boundMs(kind) + 120_000 });
  const ms = stdout.trim();
  return ms === "missed" ? undefined : Number(ms);
}

async function latency(d: LabDirector, who: Checker, kind: Kind, n: number, samples: number): Promise<Latency> {
  const samplesMs: number[] = [];
  let missed = 0;
  // A different real server each time, spread over the services.
  for (let j = 0; j < samples; j++) {
    const ms = await detect(d, (j * 97 + 13) % n, kind);
    if (ms === undefined) missed++;
    else samplesMs.push(ms);
  }
  return { checker: who, kind, n, samplesMs, missed };
}

interface Reload {
  n: number;
  /** The server held down during the up (its state must survive), and the one whose check changed. */
  heldDownKept: boolean;
  changedDownMs: number;
  othersUnchanged: boolean;
  moved: string[];
  maxGapMs: number;
  baselineMaxGapMs: number;
  restarted: boolean;
}

/**
 * Ours, at the largest scale (2,000; --quick: 200), http: one real server is down and depooled; then one `up` (one request re-sending
 * every real server, as a stack's resources would, with one check changed to a path that fails) must take effect
 * within fall × interval (+ the schedule's phase): the changed one goes to weight 0, the held-down one stays at 0,
 * every other keeps its weight, no probe of the others pauses beyond one interval, and the checker is not restarted.
 */
async function reloadCheck(d: LabDirector, n: number, baselineMaxGapMs: number): Promise<Reload> {
  const kind: Kind = "http";
  const c = CHECKS[kind];
  const held = 7 % n;
  const changed = 500 % n === held ? 501 % n : 500 % n;
  const pid = (await checkerPids(d, "ours"))[0];
  await d.exec(`${IP} netns exec hbrs nft add rule inet hb in ip daddr ${rsAddress(held)} drop`);
  await d.exec(`i=0; until [ "$(${weightCmd(held)})" = 0 ]; do i=$((i+1)); [ $i -lt 300 ] || { echo "${rsAddress(held)} never depooled" >&2; exit 1; }; sleep 0.1; done`);
  const before = (await d.exec("ipvsadm -Sn")).stdout;
  await probeGaps(d);
  const t0 = Date.now();
  await applyOk(d, ourOps(kind, n, { index: changed, check: { ...c, http: { path: "/down", method: "GET", expectStatus: "200" } } }));
  const bound = boundMs(kind) + c.intervalSeconds * 1000;
  await d.exec(`i=0; until [ "$(${weightCmd(changed)})" = 0 ]; do i=$((i+1)); [ $i -lt ${bound / 100 + 50} ] || { echo "the changed check did not depool ${rsAddress(changed)}" >&2; tail -n 5 ${DIR}/health.log >&2; exit 1; }; sleep 0.1; done`,
    { timeoutMs: bound + 60_000 });
  const changedDownMs = Date.now() - t0;
  await sleep(c.intervalSeconds * 1000); // one more interval of probes after the change
  const gaps = await probeGaps(d);
  const after = (await d.exec("ipvsadm -Sn")).stdout;
  const lines = (s: string) => new Set(s.split("\n").filter((l) => l.startsWith("-a ")));
  const b = lines(before);
  const a = lines(after);
  const changedAddr = `${rsAddress(changed)}:80 `;
  const moved = [...b].filter((l) => !a.has(l) && !l.includes(changedAddr)).concat([...a].filter((l) => !b.has(l) && !l.includes(changedAddr)));
  const others = [...gaps.entries()].filter(([addr]) => addr !== rsAddress(held) && addr !== rsAddress(changed));
  await d.exec(`${IP} netns exec hbrs nft flush chain inet hb in`);
  return {
    n,
    heldDownKept: a.has(`-a -t ${vipOf(held)}:80 -r ${rsAddress(held)}:80 -m -w 0`),
    changedDownMs,
    othersUnchanged: moved.length === 0 && others.length === n - 2,
    moved,
    maxGapMs: Math.max(0, ...others.map(([, g]) => g.maxGapMs)),
    baselineMaxGapMs,
    restarted: (await checkerPids(d, "ours"))[0] !== pid,
  };
}

export async function healthBench(opts: HealthBenchOptions = {}): Promise<{ text: string; json: object }> {
  const scales = opts.scales ?? (opts.quick ? [20, 200] : [200, 2000]);
  const windowSeconds = opts.windowSeconds ?? (opts.quick ? 10 : 30);
  const samples = opts.samples ?? (opts.quick ? 5 : 20);
  const repeats = opts.repeats ?? 1;
  const largest = Math.max(...scales);
  // Detection and the reload run where the guest keeps up with the probes: a TCG guest's one vCPU cannot run 1,000
  // probes a second (neither checker can), and a saturated guest times probes out by itself.
  // With --scales that leave 200 out (--scales 2000: the memory and the reload at 2,000 alone), no detection.
  const detectAt = opts.detectAt ?? Math.min(largest, 200);
  if (opts.detectAt !== undefined && !scales.includes(detectAt)) throw new Error(`--detect-at ${detectAt}: not one of the scales ${scales.join(", ")}`);
  if (!scales.includes(detectAt)) console.error(`bench: health: no detection latency: ${detectAt} is not one of the scales ${scales.join(", ")}`);
  const rsd = buildRsd();
  console.error(`bench: health: ${opts.name ? `on the running lab director ${opts.name}` : "booting a lab director (1 GiB)"} for the health-check benchmark …`);
  const d = opts.name ? await attachDirector(opts.name) : await startDirector({ memoryMiB: 1024, ...(opts.keep ? { name: "bench-health" } : {}) });
  const usage: Usage[] = [];
  const latencies: Latency[] = [];
  let reload: Reload | undefined;
  const accel = readVm(d.name)?.accel ?? "?";
  try {
    await installHelper(d);
    await d.copyTo(rsd, RSD, 0o755);
    await setupRealServers(d);
    const keepaliveVersion = (await d.exec("keepalived --version 2>&1 | head -n1")).stdout.trim();
    for (const kind of ["http", "tcp"] as const) {
      for (const n of scales) {
        for (let repeat = 0; repeat < repeats; repeat++) {
          const order = repeat % 2 === 0 ? (["keepalived", "ours"] as const) : (["ours", "keepalived"] as const);
          for (const who of order) {
            console.error(`bench: health: ${who}, ${n} real servers, ${kind} every ${CHECKS[kind].intervalSeconds} s: warm-up, ${windowSeconds} s window${repeats > 1 ? ` (repeat ${repeat + 1} of ${repeats})` : ""} …`);
            await startChecker(d, who, kind, n);
            await sleep(Math.max(10, 3 * CHECKS[kind].intervalSeconds) * 1000); // every real server probed a few times
            const u = { ...(await measureUsage(d, who, kind, n, windowSeconds)), repeat };
            usage.push(u);
            if (repeat > 0) {
              await stopChecker(d);
              continue; // detection and the reload once, in the first repeat
            }
            if (n === detectAt) {
              console.error(`bench: health: ${who}: ${samples} detections (kill → weight 0) …`);
              latencies.push(await latency(d, who, kind, n, samples));
            }
            // The reload at the largest scale, as the issue asks (1 check of 2,000): a pause there is what users of
            // large configurations meet (keepalived #2318).
            if (n === largest && who === "ours" && kind === "http") {
              console.error(`bench: health: ours: an up that changes 1 check of ${n} …`);
              reload = await reloadCheck(d, n, u.maxGapMs);
            }
            await stopChecker(d);
          }
        }
      }
    }
    return report({ usage, latencies, reload, accel, keepaliveVersion, windowSeconds, samples, largest });
  } finally {
    if (!opts.keep && !opts.name) await d.stop();
    rmSync(path.dirname(rsd), { recursive: true, force: true });
  }
}

function report(r: { usage: Usage[]; latencies: Latency[]; reload?: Reload; accel: string; keepaliveVersion: string; windowSeconds: number; samples: number; largest: number }): { text: string; json: object } {
  const checks: Array<{ ok: boolean; text: string }> = [];
  const mib = (k: number) => `${(k / 1024).toFixed(1)} MiB`;
  const rows: string[] = [];
  // Per kind and scale, each checker's repeats pooled (CPU, window and probes summed; memory the largest), and each
  // repeat's per-probe ratio beside.
  const pool = (who: Checker, kind: Kind, n: number): Usage => {
    const us = r.usage.filter((u) => u.checker === who && u.kind === kind && u.n === n);
    const sum = (f: (u: Usage) => number) => us.reduce((a, u) => a + f(u), 0);
    const most = (f: (u: Usage) => number) => Math.max(...us.map(f));
    return {
      ...us[0]!,
      cpuSeconds: sum((u) => u.cpuSeconds),
      sysSeconds: sum((u) => u.sysSeconds),
      windowSeconds: sum((u) => u.windowSeconds),
      probes: sum((u) => u.probes),
      vmBusy: sum((u) => u.vmBusy * u.windowSeconds) / sum((u) => u.windowSeconds),
      falseDown: sum((u) => u.falseDown),
      rssKiB: most((u) => u.rssKiB),
      hwmKiB: most((u) => u.hwmKiB),
      timeWait: most((u) => u.timeWait),
      probed: most((u) => u.probed),
      maxGapMs: most((u) => u.maxGapMs),
    };
  };
  const perProbe = (u: Usage) => (u.cpuSeconds * 1000) / Math.max(1, u.probes);
  // Per probe, user + kernel: the kernel's share (the TCP handshakes, both ends' in one guest) is alike for any
  // checker that makes the same connections, so a gap in the user share is the checker's own code.
  const split = (u: Usage) => `${(((u.cpuSeconds - u.sysSeconds) * 1000) / Math.max(1, u.probes)).toFixed(2)} + ${((u.sysSeconds * 1000) / Math.max(1, u.probes)).toFixed(2)}`;
  const repeats = Math.max(...r.usage.map((u) => u.repeat)) + 1;
  const firsts = r.usage.filter((u) => u.checker === "ours" && u.repeat === 0);
  const pairs = firsts.map(({ kind, n }) => ({ o: pool("ours", kind, n), k: pool("keepalived", kind, n) }));
  for (const { o, k } of pairs) {
    const byRepeat = Array.from({ length: repeats }, (_, i) => {
      const of = (who: Checker) => r.usage.find((u) => u.checker === who && u.kind === o.kind && u.n === o.n && u.repeat === i)!;
      return `${(perProbe(of("ours")) / perProbe(of("keepalived"))).toFixed(2)}×`;
    });
    const cpu = (u: Usage) => `${u.cpuSeconds.toFixed(2)} s (${((u.cpuSeconds / u.windowSeconds) * 100).toFixed(1)} %)`;
    const rate = (u: Usage) => `${(u.probes / u.windowSeconds).toFixed(0)}/s, ${u.probed} addr.`;
    const cpuRatio = o.cpuSeconds / k.cpuSeconds;
    // Per probe: where the guest cannot run every probe on time (a saturated vCPU), the checkers do different
    // amounts of work in the window, and the CPU each probe cost is the comparable figure.
    const perProbeRatio = perProbe(o) / perProbe(k);
    const expected = (o.n * o.windowSeconds) / CHECKS[o.kind].intervalSeconds;
    rows.push(
      `| ${o.kind} every ${CHECKS[o.kind].intervalSeconds} s | ${o.n} | ${cpu(o)} | ${cpu(k)} | ${cpuRatio.toFixed(2)}× | ` +
        `${perProbe(o).toFixed(2)} / ${perProbe(k).toFixed(2)} ms (${perProbeRatio.toFixed(2)}×) | ${split(o)} / ${split(k)} ms | ` +
        `${mib(o.rssKiB)} / ${mib(o.hwmKiB)} | ${mib(k.rssKiB)} / ${mib(k.hwmKiB)} (${k.processes} proc.) | ${(o.rssKiB / k.rssKiB).toFixed(2)}× | ` +
        `${rate(o)} | ${rate(k)} | ${(o.vmBusy * 100).toFixed(0)} % / ${(k.vmBusy * 100).toFixed(0)} % | ${o.falseDown} / ${k.falseDown} | ${o.timeWait} / ${k.timeWait} | ${byRepeat.join(", ")} |`,
    );
    checks.push({
      ok: cpuRatio <= 1.0 && perProbeRatio <= 1.0,
      text:
        `${o.kind} × ${o.n}: CPU ours / keepalived = ${cpuRatio.toFixed(2)}×, per probe ${perProbeRatio.toFixed(2)}× (target ≤ 1.0×); ` +
        `probes run ours ${((o.probes / expected) * 100).toFixed(0)} %, keepalived ${((k.probes / expected) * 100).toFixed(0)} % of ${o.n} every ${CHECKS[o.kind].intervalSeconds} s`,
    });
    if (o.n === r.largest) checks.push({ ok: o.hwmKiB <= TARGET_RSS_MIB * 1024, text: `${o.kind} × ${o.n}: our peak RSS ${mib(o.hwmKiB)} (target ≤ ${TARGET_RSS_MIB} MiB; keepalived ${mib(k.hwmKiB)})` });
    checks.push({ ok: o.falseDown === 0 && k.falseDown === 0, text: `${o.kind} × ${o.n}: real servers wrongly at weight 0 after the window: ours ${o.falseDown}, keepalived ${k.falseDown} (target 0)` });
  }
  const lrows = r.latencies.map((l) => {
    const b = boundMs(l.kind);
    const c = CHECKS[l.kind];
    const s = (ms: number) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(2)} s` : "missed");
    if (l.checker === "ours") checks.push({ ok: pct(l, 99) <= b, text: `${l.kind} × ${l.n}: our detection p99 ${s(pct(l, 99))} (target ≤ fall × interval + timeout + 1 s = ${b / 1000} s)` });
    return `| ${l.checker} | ${l.kind}: fall ${c.fall} × ${c.intervalSeconds} s + ${c.timeoutSeconds} s | ${l.n} | ${l.samplesMs.length + l.missed}${l.missed ? ` (${l.missed} missed)` : ""} | ${s(pct(l, 50))} | ${s(pct(l, 99))} | ${s(Math.min(...l.samplesMs))}–${s(Math.max(...l.samplesMs))} | ${(b - 1000) / 1000} s (+1 s: ${b / 1000} s) |`;
  });
  const rl = r.reload;
  if (rl) {
    const interval = CHECKS.http.intervalSeconds * 1000;
    checks.push({
      ok: rl.heldDownKept && rl.othersUnchanged && !rl.restarted && rl.maxGapMs < 2 * interval,
      text:
        `an up that changes 1 check of ${rl.n}: took effect in ${(rl.changedDownMs / 1000).toFixed(2)} s without a restart (${rl.restarted ? "RESTARTED" : "same process"}); ` +
        `the server held down stayed depooled: ${rl.heldDownKept}; the others' weights unchanged: ${rl.othersUnchanged}${rl.moved.length ? ` (moved: ${rl.moved.slice(0, 3).join("; ")})` : ""}; ` +
        `longest gap between two probes of one of the others ${(rl.maxGapMs / 1000).toFixed(2)} s (interval ${interval / 1000} s, a pause would be ≥ ${(2 * interval) / 1000} s; ` +
        `${(rl.baselineMaxGapMs / 1000).toFixed(2)} s in the window before)`,
    });
  }
  const text = [
    `pulumi-ipvs health-check bench: ipvs-helper health vs ${r.keepaliveVersion} (keepalived --check), one after the other on one lab director`,
    `(qemu ${r.accel}, 1 vCPU, 1 GiB; host ${os.cpus().length} CPUs shared with other jobs: compare the ratios). Window ${r.windowSeconds} s after a warm-up${repeats > 1 ? `, ${repeats} repeats in alternating order, pooled` : ""}; CPU = utime + stime of the`,
    `checker's processes (keepalived: parent + checker child), in % of one vCPU; RSS = VmRSS at the window's end / VmHWM (summed over processes).`,
    "",
    "| checks | real servers | ours CPU | keepalived CPU | CPU ours/ka | CPU per probe ours / ka | per probe user + kernel, ours / ka | ours RSS / peak | keepalived RSS / peak | RSS ours/ka | ours probes | keepalived probes | guest busy ours / ka | false weight 0 ours / ka | TIME_WAIT sockets of the last 10 s, ours / ka | per probe ours/ka, each repeat |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...rows,
    "",
    "Detection latency: one real server's address stops answering (nft drop) → weight 0 in ipvsadm (polled every 0.1 s in the guest):",
    "",
    "| checker | check | real servers | samples | p50 | p99 | range | fall × interval + timeout |",
    "|---|---|---:|---:|---:|---:|---:|---:|",
    ...lrows,
    "",
    "Checks:",
    ...checks.map((k) => `  ${k.ok ? "ok  " : "MISS"} ${k.text}`),
  ].join("\n");
  return { text, json: { accel: r.accel, cpus: os.cpus().length, keepalived: r.keepaliveVersion, windowSeconds: r.windowSeconds, checks: CHECKS, usage: r.usage, latencies: r.latencies, reload: r.reload, results: checks } };
}

/** Prints the report and writes its JSON to .lab/bench/health-<time>.json. */
export async function healthBenchMain(opts: HealthBenchOptions): Promise<void> {
  const { text, json } = await healthBench(opts);
  console.log(text);
  const dir = path.join(ROOT, ".lab", "bench");
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `health-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, JSON.stringify(json, null, 2));
  console.log(`\n(JSON: ${path.relative(process.cwd(), file)})`);
}

/** The options `npm run bench` and this file take: --quick, --keep, --window S, --samples N, --repeat R, --name DIRECTOR, --scales N,N, --detect-at N. */
export function healthOptions(args: string[]): HealthBenchOptions {
  const num = (name: string) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : undefined);
  const windowSeconds = num("--window");
  const samples = num("--samples");
  if (windowSeconds !== undefined && !(windowSeconds >= 5)) throw new Error("--window takes seconds, at least 5");
  if (samples !== undefined && !(Number.isInteger(samples) && samples >= 1)) throw new Error("--samples takes a count, at least 1");
  const repeats = num("--repeat");
  if (repeats !== undefined && !(Number.isInteger(repeats) && repeats >= 1)) throw new Error("--repeat takes a count, at least 1");
  const name = args.includes("--name") ? args[args.indexOf("--name") + 1] : undefined;
  const scales = args.includes("--scales") ? (args[args.indexOf("--scales") + 1] ?? "").split(",").map(Number) : undefined;
  if (scales !== undefined && !scales.every((n) => Number.isInteger(n) && n >= 1 && n <= 2000)) throw new Error("--scales takes real-server counts, 1 to 2,000, separated by commas (e.g. --scales 2000)");
  return { quick: args.includes("--quick"), keep: args.includes("--keep"), windowSeconds, samples, repeats, name, detectAt: num("--detect-at"), scales };
}

if (require.main === module) {
  healthBenchMain(healthOptions(process.argv.slice(2))).then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(`health bench failed: ${e instanceof Error ? e.stack : String(e)}`);
      process.exit(1);
    },
  );
}
