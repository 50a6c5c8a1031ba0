// Graceful removal, shared by a RealServer leaving its service and a VirtualService leaving a director: weight 0 stops
// new connections (the kernel keeps forwarding established ones), then wait until no active connection is left or the
// timeout passes; the caller then deletes. Inactive entries (closed, in TIME_WAIT) carry no traffic and do not hold
// the removal back.
import type { DirectorOps } from "./helperClient";
import type { Dest, ServiceKey } from "./protocol";

/** Poll interval while draining: connection counts only change as clients finish. */
const DRAIN_POLL_MS = 1000;

/**
 * Quiesces the dests `readDests` returns (all of a service's, or one) and waits for their active connections to end,
 * at most `timeoutSeconds`. Each read and write has the director's own deadline; this loop bounds the whole wait.
 */
export async function drainDests(ops: DirectorOps, service: ServiceKey, readDests: () => Promise<Dest[]>, timeoutSeconds: number): Promise<void> {
  let dests = await readDests();
  await Promise.all(
    dests.filter((d) => d.weight !== 0).map((d) => ops.ensureDest(service, { address: d.address, port: d.port, weight: 0 }, "update")),
  );
  const deadline = Date.now() + timeoutSeconds * 1000;
  while (dests.some((d) => d.activeConns > 0) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, DRAIN_POLL_MS));
    dests = await readDests();
  }
}
