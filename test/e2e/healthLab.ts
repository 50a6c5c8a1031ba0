// What the health check e2e tests (health.test.ts) share on their lab director: the check they declare and the bounds
// derived from it, the checker started by hand (as the README says for a director without systemd: the lab has none),
// and the poll of ipvsadm on the director that every wait goes through.
import { readFileSync } from "node:fs";
import path from "node:path";
import type { LabDirector } from "../lab/director";
import type { LabRealServer } from "../lab/realServers";
import { E2EStack, labDirectorConfig, repoRoot } from "./harness";

// A 2 s interval, as the helper's lab test found a 1 s one too close to its bounds on a loaded 2-core host with TCG
// guests; timeout 0.5 s, fall 2, rise 2.
export const INTERVAL = 2;
export const CHECK = { type: "http", intervalSeconds: INTERVAL, timeoutSeconds: 0.5, rise: 2, fall: 2, http: { path: "/", expectStatus: "200" } };
/** Down: fall × interval + timeout + one interval; up: rise × interval + one interval. */
export const DOWN_BOUND_MS = (CHECK.fall * INTERVAL + CHECK.timeoutSeconds + INTERVAL) * 1000;
export const UP_BOUND_MS = (CHECK.rise * INTERVAL + INTERVAL) * 1000;
export const OP_MS = 240_000;

/** Where the polls keep the table they read, on the director. */
const TABLE = "/tmp/health-table";

/** A NAT real server's line in `ipvsadm -Sn`. */
export const line = (vip: string, s: LabRealServer, w: number) => `-a -t ${vip}:80 -r ${s.address}:80 -m -w ${w}`;
/** Shell tests on the table a poll read: the line is there; nothing containing text is. */
export const has = (l: string) => `grep -qxF -- '${l}' ${TABLE}`;
export const lacks = (text: string) => `! grep -qF -- '${text}' ${TABLE}`;
/** Exactly n of vip's real servers are at weight 0. */
export const quiesced = (vip: string, n: number) => `[ "$(grep -F -- '-a -t ${vip}:80 ' ${TABLE} | grep -c -- ' -w 0$')" = ${n} ]`;

/**
 * A stack of the fixture test/e2e/fixtures/<fixture> on d with config (besides the director's), brought up, and the
 * checker started for it, logging to /run/lab/<fixture>.log. end() stops the checker, waiting until it is gone (another
 * may start then), and destroys the stack.
 */
export async function checkedStack(d: LabDirector, fixture: string, config: Record<string, string>) {
  const checker = new LabChecker(d, `/run/lab/${fixture}.log`, `/run/lab/${fixture}.pid`);
  const stack = await E2EStack.create({ program: path.join(repoRoot, "test/e2e/fixtures", fixture), config: { ...labDirectorConfig(d), ...config } });
  const end = async () => {
    await checker.stop().catch(() => undefined);
    await stack.dispose();
  };
  try {
    await stack.up();
    await checker.start();
  } catch (err) {
    await end();
    throw err;
  }
  return { stack, checker, end };
}

/** The checker a test starts by hand with the helper the last `up` installed, logging to log, its pid in pid. */
export class LabChecker {
  constructor(
    private readonly d: LabDirector,
    readonly log: string,
    private readonly pid: string,
  ) {}

  async start(): Promise<void> {
    await this.d.exec(`set -e; h=$(ls -d /usr/local/lib/pulumi-ipvs/*/ipvs-helper | tail -n 1); mkdir -p /run/lab
setsid "$h" health </dev/null >>${this.log} 2>&1 & echo $! > ${this.pid}`);
  }

  /** Stops it and waits (10 s at most) until its process is gone, and with it its lock: another may start then. */
  async stop(): Promise<void> {
    await this.d.exec(`[ -e ${this.pid} ] || exit 0; p=$(cat ${this.pid}); kill $p 2>/dev/null || true; i=0
while [ -e /proc/$p ]; do i=$((i+1)); [ $i -lt 100 ] || { echo "checker $p did not stop" >&2; exit 1; }; sleep 0.1; done; rm -f ${this.pid}`);
  }

  async logText(): Promise<string> {
    return (await this.d.exec(`cat ${this.log}`)).stdout;
  }

  /**
   * Runs `action` on the director, then polls ipvsadm there every 0.2 s until every shell test in `until` holds (see
   * has, lacks, quiesced); returns the milliseconds that took, measured on the director (no SSH round trip in it). Fails past
   * boundMs + 3 s, showing the table and the checker's log.
   */
  async timeUntil(action: string, until: string[], boundMs: number): Promise<number> {
    const limit = Math.ceil((boundMs + 3000) / 10); // centiseconds
    const { stdout } = await this.d.exec(`set -e
start=$(cut -d' ' -f1 /proc/uptime | tr -d .)
${action}
while :; do
  ipvsadm -Sn > ${TABLE}
  now=$(cut -d' ' -f1 /proc/uptime | tr -d .)
  if ${until.join(" && ")}; then echo $(( (now - start) * 10 )); exit 0; fi
  [ $((now - start)) -lt ${limit} ] || { echo "not reached within ${boundMs + 3000} ms: ${until.join(" && ").replace(/['"$]/g, "")}" >&2; cat ${TABLE} >&2; tail -n 20 ${this.log} >&2; exit 1; }
  sleep 0.2
done`);
    return Number(stdout.trim());
  }
}
