// Issue #5 acceptance through the real pulumi CLI: examples/quickstart (1 TCP service, 3 NAT real servers) against a
// lab director, in ONE stack lifecycle (each `pulumi up` costs seconds): preview touches nothing and rejects bad input,
// up brings real traffic, scheduler/weight changes update in place without resetting counters, out-of-band deletion
// is seen by refresh and healed by up, VirtualService.get() reads the live entry, the key never reaches state in
// plaintext, destroy leaves foreign entries alone.
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDirector, type LabDirector } from "../lab/director";
import { ipvsadm, ipvsadmList, ipvsadmSave, ipvsadmStats, waitForStats, type IpvsServiceStats } from "../lab/ipvsadm";
import { addRealServers, addVip, httpRequests, openLongConnection, type LabRealServer } from "../lab/realServers";
import { E2EStack, repoRoot, type EngineEvent, type OperationResult } from "./harness";

const VIP = "192.0.2.10";
const FOREIGN = "198.51.100.7:443";
const VS_TYPE = "pulumi-nodejs:dynamic/ipvs:VirtualService";
const RS_TYPE = "pulumi-nodejs:dynamic/ipvs:RealServer";

/** Ops per resource name from the engine's resourcePreEvents (what the engine did or plans), e.g. { web: "update" }. */
function opsOf(res: OperationResult): Record<string, string> {
  const ops: Record<string, string> = {};
  for (const e of res.events) {
    const md = (e.resourcePreEvent as { metadata?: { urn: string; op: string; type: string } } | undefined)?.metadata;
    if (!md || !md.type.startsWith("pulumi-nodejs:dynamic/ipvs:")) continue;
    ops[md.urn.split("::").pop()!] = md.op;
  }
  return ops;
}

/** Ops from resOutputsEvents (what really happened, e.g. refresh's "delete" for a vanished entry). */
function outputOps(res: OperationResult): Record<string, string> {
  const ops: Record<string, string> = {};
  for (const e of res.events as EngineEvent[]) {
    const md = (e.resOutputsEvent as { metadata?: { urn: string; op: string; type: string } } | undefined)?.metadata;
    if (!md || !md.type.startsWith("pulumi-nodejs:dynamic/ipvs:")) continue;
    ops[md.urn.split("::").pop()!] = md.op;
  }
  return ops;
}

describe("examples/quickstart through the pulumi CLI against a lab director", () => {
  let d: LabDirector;
  let servers: LabRealServer[];
  let stack: E2EStack;
  let keyText: string;
  /** ipvsadm -Sn before the stack touched anything: only the foreign service. */
  let foreignOnly: string;

  /** SSH logins and accepted TCP connections so far on the director (the lab's own exec reuses one master). */
  const sshCounters = async () => {
    const { stdout } = await d.exec(
      `grep -c 'Accepted publickey' /var/log/sshd.log || true; awk '/^Tcp:/ {n++} n==2 && /^Tcp:/ {print $7; exit}' /proc/net/snmp`,
    );
    const [logins, passiveOpens] = stdout.trim().split("\n").map(Number);
    return { logins, passiveOpens };
  };
  const expectPreviewFails = async (property: string, rule: RegExp) => {
    const err = await stack.preview().then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err, "preview should fail").toBeInstanceOf(Error);
    // The CLI prints the check failure: `… property weight: weight must be an integer 0..65535`, or similar.
    expect(err!.message).toMatch(new RegExp(`\\b${property}\\b`));
    expect(err!.message).toMatch(rule);
  };

  beforeAll(async () => {
    d = await startDirector();
    servers = await addRealServers(d, 3);
    await addVip(d, VIP);
    // Someone else's service on the same director: the stack must never touch it.
    await ipvsadm(d, `-A -t ${FOREIGN} -s wlc`);
    await ipvsadm(d, `-a -t ${FOREIGN} -r 10.10.0.11:443 -m -w 5`);
    foreignOnly = await ipvsadmSave(d);
    keyText = readFileSync(d.privateKeyPath, "utf8");
    stack = await E2EStack.create({
      program: path.join(repoRoot, "examples", "quickstart"),
      config: {
        host: d.host,
        port: String(d.port),
        user: d.user,
        privateKey: { secret: keyText },
        hostKey: d.hostKey,
        vip: VIP,
        backends: JSON.stringify(servers.map((s) => s.address)),
        scheduler: "rr",
        weight: "1",
      },
    });
  });

  afterAll(async () => {
    await stack?.dispose();
    await d?.stop();
  });

  it("preview plans the creates and opens no SSH connection; bad input fails at preview, naming the property", async () => {
    const before = await sshCounters();
    const res = await stack.preview();
    expect(opsOf(res)).toEqual({ web: "create", "app-1": "create", "app-2": "create", "app-3": "create" });

    await stack.setConfig("weight", "70000");
    await expectPreviewFails("weight", /0\.\.65535/);
    await stack.setConfig("weight", "1");
    await stack.setConfig("scheduler", "foo");
    await expectPreviewFails("scheduler", /scheduler must be one of/);
    await stack.setConfig("scheduler", "rr");

    // Three previews (one good, two rejected): not one TCP connection accepted, not one SSH login, table untouched.
    expect(await sshCounters()).toEqual(before);
    expect(await ipvsadmSave(d)).toBe(foreignOnly);
  });

  it("up creates the service and real HTTP through the VIP reaches all three real servers", async () => {
    const before = await sshCounters();
    const res = await stack.up();
    expect(outputOps(res)).toEqual({ web: "create", "app-1": "create", "app-2": "create", "app-3": "create" });
    // The counters work: up did log in (one pooled connection per director for all four resources).
    const after = await sshCounters();
    expect(after.logins - before.logins).toBe(1);

    const save = await ipvsadmSave(d);
    expect(save).toContain(`-A -t ${VIP}:80 -s rr`);
    for (const s of servers) expect(save).toContain(`-a -t ${VIP}:80 -r ${s.address}:80 -m -w 1`);
    const answers = await httpRequests(d, VIP, 80, 6);
    expect([...answers].sort()).toEqual(["rs1", "rs1", "rs2", "rs2", "rs3", "rs3"]);
  });

  it("the private key never appears in plaintext in the exported state", async () => {
    const { text, deployment } = await stack.exportState();
    const body = keyText
      .split("\n")
      .filter((l) => l && !l.startsWith("-----"))
      .join("");
    expect(body.length).toBeGreaterThan(40);
    for (const line of keyText.split("\n").filter((l) => l && !l.startsWith("-----"))) expect(text).not.toContain(line);
    expect(text).not.toContain(body);
    expect(text).not.toContain("PRIVATE KEY");
    // directors (VirtualService) and service (RealServer) hold the credentials: stored encrypted.
    const vs = deployment.resources!.find((r) => r.type === VS_TYPE)!;
    expect(vs.outputs!.directors).toHaveProperty("ciphertext");
    for (const rs of deployment.resources!.filter((r) => r.type === RS_TYPE)) expect(rs.outputs!.service).toHaveProperty("ciphertext");
  });

  it("changing scheduler and weight updates in place: no replacement, counters and connections survive", async () => {
    // An established client connection through the VIP, held open across the update.
    const held = await openLongConnection(d, VIP, 80);
    // The kernel publishes --stats totals every 2 s: wait until the 6 earlier requests + the held one are counted.
    const ours = (stats: IpvsServiceStats[]) => stats.find((s) => s.service === `TCP ${VIP}:80`);
    const statsBefore = ours(await waitForStats(d, (stats) => ours(stats)?.conns === 7))!;

    await stack.setConfig("scheduler", "wrr");
    await stack.setConfig("weight", "3");
    const preview = await stack.preview();
    expect(opsOf(preview)).toEqual({ web: "update", "app-1": "update", "app-2": "update", "app-3": "update" });
    const res = await stack.up();
    expect(outputOps(res)).toEqual({ web: "update", "app-1": "update", "app-2": "update", "app-3": "update" });
    const allOps = JSON.stringify(res.events.map((e) => (e.resourcePreEvent as any)?.metadata?.op).filter(Boolean));
    expect(allOps).not.toMatch(/replace|create|delete/);

    const save = await ipvsadmSave(d);
    expect(save).toContain(`-A -t ${VIP}:80 -s wrr`);
    for (const s of servers) expect(save).toContain(`-a -t ${VIP}:80 -r ${s.address}:80 -m -w 3`);
    // Same kernel entries, not re-created: their connection counters are where they were.
    const statsAfter = ours(await ipvsadmStats(d))!;
    expect(statsAfter.conns).toBe(statsBefore.conns);
    expect(statsAfter.realServers.map((r) => [r.address, r.conns])).toEqual(statsBefore.realServers.map((r) => [r.address, r.conns]));
    // The held connection is still in the kernel's connection table, established, and still counted as active.
    expect((await ipvsadm(d, "-Lnc")).split("\n").filter((l) => /ESTABLISHED/.test(l) && l.includes(`${VIP}:80`))).toHaveLength(1);
    expect((await ipvsadmList(d, `-t ${VIP}:80`)).match(/-> \S+\s+Masq\s+3\s+1\s/g)).toHaveLength(1);
    await held.close();
    // And traffic still flows to all three.
    expect(new Set(await httpRequests(d, VIP, 80, 6))).toEqual(new Set(["rs1", "rs2", "rs3"]));
  });

  it("VirtualService.get() by id reads the live service into another program", async () => {
    const id = (await stack.outputs()).service as string;
    expect(id).toBe(`tcp/${VIP}:80@${d.host}:${d.port}`);
    const reader = await E2EStack.create({
      program: path.join(repoRoot, "test", "e2e", "fixtures", "get-service"),
      config: {
        host: d.host,
        port: String(d.port),
        user: d.user,
        privateKey: { secret: keyText },
        hostKey: d.hostKey,
        serviceId: id,
      },
    });
    try {
      const res = await reader.up();
      expect(opsOf(res)).toEqual({ existing: "read" });
      expect(await reader.outputs()).toMatchObject({
        id,
        address: VIP,
        port: 80,
        protocol: "tcp",
        family: "ipv4",
        // Read from the kernel: the scheduler the last up set.
        scheduler: "wrr",
      });
      const { text } = await reader.exportState();
      expect(text).not.toContain(keyText.split("\n")[1]!);
    } finally {
      // A read resource is not owned: destroying the reader's stack must not delete the service.
      await reader.dispose();
    }
    expect(await ipvsadmSave(d)).toContain(`-A -t ${VIP}:80 -s wrr`);
  });

  it("refresh sees a real server deleted out of band, and up puts it back", async () => {
    const gone = servers[1]!;
    await ipvsadm(d, `-d -t ${VIP}:80 -r ${gone.address}:80`);
    await ipvsadm(d, `-e -t ${VIP}:80 -r ${servers[0]!.address}:80 -m -w 7`);

    const refresh = await stack.refresh();
    // The engine's verdicts: the vanished dest is deleted from state, the edited weight is read back as drift.
    expect(outputOps(refresh)).toEqual({ web: "same", "app-1": "update", "app-2": "delete", "app-3": "same" });
    const { deployment } = await stack.exportState();
    const names = deployment.resources!.filter((r) => r.type === RS_TYPE).map((r) => r.urn.split("::").pop());
    expect(names.sort()).toEqual(["app-1", "app-3"]);
    const app1 = deployment.resources!.find((r) => r.urn.endsWith("::app-1"))!;
    expect(app1.outputs!.weight).toBe(7);

    const up = await stack.up();
    expect(outputOps(up)).toMatchObject({ "app-1": "update", "app-2": "create" });
    const save = await ipvsadmSave(d);
    for (const s of servers) expect(save).toContain(`-a -t ${VIP}:80 -r ${s.address}:80 -m -w 3`);
    expect(new Set(await httpRequests(d, VIP, 80, 6))).toEqual(new Set(["rs1", "rs2", "rs3"]));
  });

  it("destroy removes what the stack owns and leaves the foreign service untouched", async () => {
    const res = await stack.destroy();
    expect(outputOps(res)).toEqual({ web: "delete", "app-1": "delete", "app-2": "delete", "app-3": "delete" });
    expect(await ipvsadmSave(d)).toBe(foreignOnly);
  });
});
