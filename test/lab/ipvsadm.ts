// The oracle: the real ipvsadm inside a lab director, and a parser for its exact statistics listing.
import type { LabDirector } from "./director";

/** Runs `ipvsadm <args>` as root on the director and returns its stdout; throws with ipvsadm's stderr on failure. */
export async function ipvsadm(d: LabDirector, args: string): Promise<string> {
  return (await d.exec(`ipvsadm ${args}`)).stdout;
}

/** The whole table in `ipvsadm -Sn` (restore) format. */
export function ipvsadmSave(d: LabDirector): Promise<string> {
  return ipvsadm(d, "-Sn");
}

/** `ipvsadm -Ln <args>`, e.g. ipvsadmList(d, "-t 10.0.0.1:80 --stats"). */
export function ipvsadmList(d: LabDirector, args = ""): Promise<string> {
  return ipvsadm(d, `-Ln ${args}`);
}

export interface IpvsCounters {
  conns: number;
  inPkts: number;
  outPkts: number;
  inBytes: number;
  outBytes: number;
}

export interface IpvsServiceStats extends IpvsCounters {
  /** As ipvsadm prints it, e.g. "TCP 10.0.0.1:80" or "FWM 7". */
  service: string;
  realServers: Array<IpvsCounters & { address: string }>;
}

/**
 * Parses `ipvsadm -Ln --stats --exact`. The kernel folds its per-CPU counters into these totals every 2 s, so they lag
 * behind traffic: use waitForStats to read them once they show what was sent.
 */
export async function ipvsadmStats(d: LabDirector): Promise<IpvsServiceStats[]> {
  const out = await ipvsadm(d, "-Ln --stats --exact");
  const services: IpvsServiceStats[] = [];
  for (const line of out.split("\n")) {
    const m = /^(\s*->\s+)?(?:(TCP|UDP|SCTP|FWM)\s+)?(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$/.exec(line);
    if (!m) continue;
    const counters: IpvsCounters = {
      conns: Number(m[4]), inPkts: Number(m[5]), outPkts: Number(m[6]), inBytes: Number(m[7]), outBytes: Number(m[8]),
    };
    if (m[1]) {
      const svc = services.at(-1);
      if (!svc) throw new Error(`ipvsadm --stats: real server line before any service: ${line}`);
      svc.realServers.push({ address: m[3]!, ...counters });
    } else if (m[2]) {
      services.push({ service: `${m[2]} ${m[3]}`, ...counters, realServers: [] });
    }
  }
  return services;
}

/** Reads the statistics until `settled` accepts them; throws with the last reading after timeoutMs. */
export async function waitForStats(
  d: LabDirector,
  settled: (stats: IpvsServiceStats[]) => boolean,
  timeoutMs = 30_000,
): Promise<IpvsServiceStats[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const stats = await ipvsadmStats(d);
    if (settled(stats)) return stats;
    if (Date.now() > deadline) {
      throw new Error(`lab director ${d.name}: ipvsadm statistics did not settle within ${timeoutMs} ms: ${JSON.stringify(stats)}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}
