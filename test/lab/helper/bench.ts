// Benchmark (not a test): 10,000 real servers (100 services x 100) applied from a flushed table by one
// `ipvs-helper apply` request vs `ipvsadm-restore` of the same table, inside the same lab VM, several rounds each.
// Usage: npx tsx test/lab/helper/bench.ts [--name <running lab director>] [--rounds N]
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { attachDirector, startDirector, type LabDirector } from "../director";
import { HELPER, installHelper } from "./helperLab";

const SERVICES = 100;
const DESTS = 100;

function table(): { rules: string; request: string } {
  const rules: string[] = [];
  const ops: object[] = [];
  for (let s = 1; s <= SERVICES; s++) {
    const vip = `10.100.${s}.1`;
    rules.push(`-A -t ${vip}:80 -s wlc`);
    ops.push({ op: "ensureService", service: { family: "ipv4", protocol: "tcp", address: vip, port: 80, scheduler: "wlc" } });
    for (let r = 1; r <= DESTS; r++) {
      const rip = `10.200.${s}.${r}`;
      rules.push(`-a -t ${vip}:80 -r ${rip}:8080 -m -w ${r}`);
      ops.push({ op: "ensureDest", service: { family: "ipv4", protocol: "tcp", address: vip, port: 80 }, dest: { address: rip, port: 8080, forwarding: "nat", weight: r } });
    }
  }
  return { rules: rules.join("\n") + "\n", request: JSON.stringify({ v: 1, ops }) };
}

/** Runs cmd inside the VM from a flushed table and returns its wall time in ms, measured in the VM. */
async function timed(d: LabDirector, cmd: string): Promise<number> {
  // The VM's root shell is bash: $EPOCHREALTIME has microseconds (busybox date has no %N).
  const out = await d.exec(`ipvsadm -C; s=$EPOCHREALTIME; ${cmd} >/dev/null; e=$EPOCHREALTIME; awk "BEGIN{print ($e - $s) * 1000}"`, { timeoutMs: 300_000 });
  return Number(out.stdout.trim());
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const name = args.includes("--name") ? args[args.indexOf("--name") + 1] : undefined;
  const rounds = args.includes("--rounds") ? Number(args[args.indexOf("--rounds") + 1]) : 5;
  const d = name ? await attachDirector(name) : await startDirector({ memoryMiB: 1024 });
  try {
    await installHelper(d);
    const { rules, request } = table();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ipvs-bench-"));
    fs.writeFileSync(path.join(dir, "rules"), rules);
    fs.writeFileSync(path.join(dir, "request.json"), request);
    await d.copyTo(path.join(dir, "rules"), "/tmp/bench.rules");
    await d.copyTo(path.join(dir, "request.json"), "/tmp/bench.json");
    const helper: number[] = [];
    const restore: number[] = [];
    for (let i = 0; i < rounds; i++) {
      restore.push(await timed(d, "ipvsadm-restore < /tmp/bench.rules"));
      const want = (await d.exec("ipvsadm -Sn | md5sum")).stdout;
      helper.push(await timed(d, `${HELPER} apply < /tmp/bench.json`));
      const got = (await d.exec("ipvsadm -Sn | md5sum")).stdout;
      if (got !== want) throw new Error("the helper built a different table than ipvsadm-restore");
      const failed = (await d.exec(`${HELPER} apply < /tmp/bench.json | grep -c '"ok":false' || true`)).stdout.trim();
      if (failed !== "0") throw new Error(`re-applying the request failed ${failed} times`);
    }
    await d.exec("ipvsadm -C");
    const h = median(helper);
    const r = median(restore);
    console.log(JSON.stringify({ entries: SERVICES * DESTS + SERVICES, rounds, helperMs: helper, ipvsadmRestoreMs: restore,
      helperMedianMs: h, ipvsadmRestoreMedianMs: r, speedup: Number((r / h).toFixed(2)) }));
  } finally {
    if (!name) await d.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
