// Resources renamed with Pulumi aliases through the real pulumi CLI on one lab director: the engine keeps them (an
// in-place update, no replace, no delete), the kernel's table does not change, and the helper's ownership ledger
// moves each real server to its resource's new URN (formerHolder, PROTOCOL.md rule 6), so later ops are not OWNED.
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDirector, type LabDirector } from "../lab/director";
import { ipvsadm } from "../lab/ipvsadm";
import { E2EStack, repoRoot, type OperationResult } from "./harness";

const VIP = "192.0.2.21";
const urn = (type: string, name: string) => `urn:pulumi:e2e::aliases::pulumi-nodejs:dynamic/ipvs:${type}::${name}`;

/** The resource changes an operation's summary counted, e.g. { same: 1, update: 3 }. */
function changes(res: OperationResult): Record<string, number> {
  const summary = res.events.find((e) => e.summaryEvent)?.summaryEvent as { resourceChanges?: Record<string, number> } | undefined;
  return summary?.resourceChanges ?? {};
}

describe("resources renamed with aliases keep their entries on a lab director", () => {
  let d: LabDirector;
  let stack: E2EStack;
  /** Each real server's holder in the director's ledger ("address:port" → URN). */
  const holders = async (): Promise<Record<string, string | undefined>> => {
    const out = (await d.exec("/usr/local/lib/pulumi-ipvs/*/ipvs-helper owners --json")).stdout;
    const { stacks } = JSON.parse(out) as { stacks: { dests: { dest: { address: string; port: number }; holder?: string }[] }[] };
    return Object.fromEntries(stacks.flatMap((s) => s.dests.map((x) => [`${x.dest.address}:${x.dest.port}`, x.holder])));
  };

  beforeAll(async () => {
    d = await startDirector();
    const director = JSON.stringify({ host: d.host, port: d.port, user: d.user, privateKey: readFileSync(d.privateKeyPath, "utf8"), hostKey: d.hostKey });
    stack = await E2EStack.create({ program: path.join(repoRoot, "test", "e2e", "fixtures", "aliases"), config: { director, vip: VIP } });
  });

  afterAll(async () => {
    await stack?.dispose();
    await d?.stop();
  });

  it("the rename is an update that moves every holder to the new URN; destroy empties the table", async () => {
    await stack.up();
    const table = await ipvsadm(d, "-Sn");
    expect(table).toContain(`-a -t ${VIP}:80 -r 10.30.0.1:8080 -m -w 2`);
    expect(await holders()).toEqual({
      "10.30.0.1:8080": urn("RealServer", "app-1"),
      "10.30.0.2:8080": urn("RealServerPool", "backends"),
      "10.30.0.3:8080": urn("RealServerPool", "backends"),
    });

    await stack.setConfig("renamed", "true");
    const res = await stack.up();
    // The three renamed resources are updated in place: nothing created, deleted or replaced.
    const { same: _same, ...changed } = changes(res);
    expect(changed).toEqual({ update: 3 });
    expect(await ipvsadm(d, "-Sn")).toBe(table);
    expect(await holders()).toEqual({
      "10.30.0.1:8080": urn("RealServer", "web-1"),
      "10.30.0.2:8080": urn("RealServerPool", "web-pool"),
      "10.30.0.3:8080": urn("RealServerPool", "web-pool"),
    });

    await stack.destroy();
    expect(await ipvsadm(d, "-Sn")).toBe("");
  });
});
