// Graceful removal, shared by a RealServer leaving its service and a VirtualService leaving a director: weight 0 stops
// new connections (the kernel keeps forwarding established ones), then wait until no active connection is left or the
// timeout passes; the caller then deletes. Inactive entries (closed, in TIME_WAIT) carry no traffic and do not hold
// the removal back. A drain that waits says so in `pulumi up`'s output (provider/progress.ts), not a silent pause.
import type { DirectorOps } from "./helperClient";
import { serviceIdPart } from "./identity";
import { reportProgress, type ProgressReport } from "./progress";
import type { Dest, ServiceKey } from "./protocol";

/** Poll interval while draining: connection counts only change as clients finish. */
const DRAIN_POLL_MS = 1000;
/** At most one "… left" status per this interval: enough to see it move, not a line per poll. */
const REPORT_EVERY_MS = 5000;

export interface DrainOptions {
  /** The resource draining, so its progress shows on its own row; without it, on the stack's. */
  urn?: string;
  // Seams for unit tests; the defaults are the real clock and the engine.
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  report?: (report: ProgressReport) => Promise<void>;
}

/**
 * Quiesces the dests `readDests` returns (all of a service's, or one) and waits for their active connections to end,
 * at most `timeoutSeconds`. Each read and write has the director's own deadline; this loop bounds the whole wait.
 */
export async function drainDests(
  ops: DirectorOps,
  service: ServiceKey,
  readDests: () => Promise<Dest[]>,
  timeoutSeconds: number,
  opts: DrainOptions = {},
): Promise<void> {
  const { urn, now = Date.now, sleep = (ms) => new Promise<void>((r) => setTimeout(r, ms)), report = reportProgress } = opts;
  let dests = await readDests();
  await Promise.all(
    dests.filter((d) => d.weight !== 0).map((d) => ops.ensureDest(service, { address: d.address, port: d.port, weight: 0 }, "update")),
  );
  const start = now();
  const deadline = start + timeoutSeconds * 1000;
  const active = () => dests.reduce((n, d) => n + d.activeConns, 0);
  // Nothing to wait for, nothing to show: the caller deletes right away.
  if (active() === 0) return;

  const what = `${dests.length} real server(s) of ${serviceIdPart(service)} on ${ops.target}`;
  // Statuses are not awaited (the engine call has its own short deadline): the drain's timing is the kernel's alone.
  const status = (message: string) => void report({ message, urn, ephemeral: true, severity: "info" });
  status(`draining ${what}: ${active()} active connection(s), up to ${timeoutSeconds} s`);
  let reported = start;
  while (dests.some((d) => d.activeConns > 0) && now() < deadline) {
    await sleep(DRAIN_POLL_MS);
    dests = await readDests();
    const t = now();
    if (active() > 0 && t < deadline && t - reported >= REPORT_EVERY_MS) {
      status(`draining ${what}: ${active()} connection(s) left, ${Math.ceil((deadline - t) / 1000)} s left`);
      reported = t;
    }
  }
  // The outcome stays in the summary; awaited, so it is shown before the removal it announces.
  const seconds = Math.round((now() - start) / 1000);
  await report(
    active() === 0
      ? { message: `drained ${what}: connections ended after ${seconds} s`, urn, ephemeral: false, severity: "info" }
      : {
          message: `drain of ${what} timed out after ${timeoutSeconds} s with ${active()} active connection(s) left; removing anyway`,
          urn,
          ephemeral: false,
          severity: "warning",
        },
  );
}
