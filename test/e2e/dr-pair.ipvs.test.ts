// examples/dr-pair through the real pulumi CLI against TWO lab directors: one up puts the same DR service and real
// servers on both; real HTTP through the VIP works by direct routing (real servers hold the VIP on lo and answer
// the client themselves); destroy empties both directors.
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDirector, type LabDirector } from "../lab/director";
import { ipvsadmSave } from "../lab/ipvsadm";
import { addRealServers, addVip, httpRequests, type LabRealServer } from "../lab/realServers";
import { E2EStack, repoRoot } from "./harness";

const VIP = "192.0.2.20";

/** Real servers ready for direct routing: the VIP on lo, no ARP answers for it; the director accepts their replies. */
async function prepareDr(d: LabDirector, servers: LabRealServer[]): Promise<void> {
  const ns = servers
    .map(
      (s) => `/sbin/ip -n ${s.name} addr add ${VIP}/32 dev lo
/sbin/ip netns exec ${s.name} sh -c 'echo 1 > /proc/sys/net/ipv4/conf/all/arp_ignore; echo 2 > /proc/sys/net/ipv4/conf/all/arp_announce'`,
    )
    .join("\n");
  // Replies leave the real servers with the VIP as source and are routed by the director, which owns the VIP too.
  await d.exec(`set -e
${ns}
for f in /proc/sys/net/ipv4/conf/*/accept_local; do echo 1 > $f; done
for f in /proc/sys/net/ipv4/conf/*/rp_filter; do echo 0 > $f; done`);
}

describe("examples/dr-pair: one DR service on two lab directors", () => {
  let a: LabDirector;
  let b: LabDirector;
  let stack: E2EStack;

  beforeAll(async () => {
    [a, b] = await Promise.all([startDirector(), startDirector()]);
    for (const d of [a, b]) {
      const servers = await addRealServers(d, 2);
      await addVip(d, VIP);
      await prepareDr(d, servers);
    }
    stack = await E2EStack.create({
      program: path.join(repoRoot, "examples", "dr-pair"),
      config: {
        directorA: `${a.host}:${a.port}`,
        directorB: `${b.host}:${b.port}`,
        user: a.user,
        privateKey: { secret: readFileSync(a.privateKeyPath, "utf8") },
        hostKeyA: a.hostKey,
        hostKeyB: b.hostKey,
        vip: VIP,
        backends: JSON.stringify(["10.10.0.11", "10.10.0.12"]),
      },
    });
  });

  afterAll(async () => {
    await stack?.dispose();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it("up puts the same service and DR real servers on both directors, and each serves the VIP", async () => {
    await stack.up();
    for (const d of [a, b]) {
      const save = await ipvsadmSave(d);
      expect(save).toContain(`-A -t ${VIP}:80 -s wlc -p 300 -M 255.255.255.0`);
      expect(save).toContain(`-a -t ${VIP}:80 -r 10.10.0.11:80 -g -w 100`);
      expect(save).toContain(`-a -t ${VIP}:80 -r 10.10.0.12:80 -g -w 100`);
      // Persistent per client /24: every request of the one client lands on the same real server.
      const answers = await httpRequests(d, VIP, 80, 4);
      expect(answers.every((x) => x === answers[0])).toBe(true);
      expect(["rs1", "rs2"]).toContain(answers[0]);
    }
    const outs = await stack.outputs();
    expect(outs.service).toBe(`tcp/${VIP}:80@${[a, b].map((d) => `${d.host}:${d.port}`).sort().join(",")}`);
  });

  it("destroy empties both directors", async () => {
    await stack.destroy();
    for (const d of [a, b]) expect((await ipvsadmSave(d)).trim()).toBe("");
  });
});
