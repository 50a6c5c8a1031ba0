// Shared by the helper's lab tests: build ipvs-helper once, install it in a lab director, run requests and commands.
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import type { LabDirector } from "../director";
import { ipvsadmStats, type IpvsServiceStats } from "../ipvsadm";

const ROOT = path.resolve(__dirname, "../../..");
export const HELPER = "/usr/local/bin/ipvs-helper";

let built: string | undefined;

/** Builds the helper with provider/helper/build.sh (cheap when the Go build cache is warm) and returns the amd64 binary. */
export function buildHelper(): string {
  if (!built) {
    execFileSync("bash", [path.join(ROOT, "provider/helper/build.sh")], { stdio: ["ignore", "ignore", "inherit"] });
    built = path.join(ROOT, "provider/helper/bin/ipvs-helper-linux-amd64");
  }
  return built;
}

export async function installHelper(d: LabDirector): Promise<void> {
  await d.copyTo(buildHelper(), HELPER, 0o755);
}

export interface HelperError {
  code: string;
  errno: number;
  message: string;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type HelperResult = { ok: boolean; changed?: boolean; created?: boolean; error?: HelperError; [k: string]: any };

/** Runs one request through `ipvs-helper apply` and returns its results. */
export async function apply(d: LabDirector, ops: object[]): Promise<HelperResult[]> {
  const res = await d.exec(`${HELPER} apply`, { stdin: JSON.stringify({ v: 1, ops }), timeoutMs: 170_000 });
  const out = JSON.parse(res.stdout) as { results: HelperResult[]; error?: HelperError };
  if (out.error) throw new Error(`helper request failed: ${out.error.code}: ${out.error.message}`);
  return out.results;
}

/** Runs ops and throws unless every one succeeded. */
export async function applyOk(d: LabDirector, ops: object[]): Promise<HelperResult[]> {
  const results = await apply(d, ops);
  results.forEach((r, i) => {
    if (!r.ok) throw new Error(`op ${i} ${JSON.stringify(ops[i])} failed: ${r.error?.code}: ${r.error?.message}`);
  });
  return results;
}

export async function helperSave(d: LabDirector): Promise<string> {
  return (await d.exec(`${HELPER} save`)).stdout;
}

/** Runs a list of ipvsadm command lines (arguments only) in one exec. */
export async function ipvsadmAll(d: LabDirector, lines: string[]): Promise<void> {
  if (lines.length) await d.exec(["set -e", ...lines.map((l) => `ipvsadm ${l}`)].join("\n"));
}

// Service keys and ops, written the way the provider writes them.
export const tcp = (address: string, port: number) => ({ family: address.includes(":") ? "ipv6" : "ipv4", protocol: "tcp", address, port });
export const udp = (address: string, port: number) => ({ family: address.includes(":") ? "ipv6" : "ipv4", protocol: "udp", address, port });
export const sctp = (address: string, port: number) => ({ family: address.includes(":") ? "ipv6" : "ipv4", protocol: "sctp", address, port });
export const fwmark = (mark: number, family = "ipv4") => ({ family, fwmark: mark });
export const svcOp = (service: object, settings: object = {}, extra: object = {}) => ({ op: "ensureService", service: { ...service, ...settings }, ...extra });
export const destOp = (service: object, dest: object, extra: object = {}) => ({ op: "ensureDest", service, dest, ...extra });

/**
 * The kernel publishes connection counters from per-CPU counters on its 2-second estimator tick, so a read right
 * after traffic can lag. Reads `ipvsadm -Ln --stats --exact` until two reads one tick apart agree.
 */
export async function settledStats(d: LabDirector): Promise<IpvsServiceStats[]> {
  let prev = JSON.stringify(await ipvsadmStats(d));
  for (let i = 0; i < 15; i++) {
    await new Promise((r) => setTimeout(r, 2100));
    const cur = await ipvsadmStats(d);
    if (JSON.stringify(cur) === prev) return cur;
    prev = JSON.stringify(cur);
  }
  throw new Error(`lab director ${d.name}: IPVS counters did not settle`);
}
