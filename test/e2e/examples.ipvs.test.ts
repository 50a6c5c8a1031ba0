// The smaller examples run for real (pulumi up → ipvsadm shows exactly what they declare → destroy leaves nothing) on
// one lab director: examples/fwmark and examples/ipv6-udp-dns. Their traffic needs a firewall mark rule or DNS servers,
// which the lab does not have; the quickstart and dr-pair tests cover traffic.
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDirector, type LabDirector } from "../lab/director";
import { ipvsadmList, ipvsadmSave } from "../lab/ipvsadm";
import { E2EStack, repoRoot } from "./harness";

describe("examples/fwmark and examples/ipv6-udp-dns against a lab director", () => {
  let d: LabDirector;
  const connection = () => ({
    host: d.host,
    port: String(d.port),
    user: d.user,
    privateKey: { secret: readFileSync(d.privateKeyPath, "utf8") },
    hostKey: d.hostKey,
  });

  beforeAll(async () => {
    d = await startDirector();
  });
  afterAll(async () => {
    await d?.stop();
  });

  it("fwmark: one persistent mark service, NAT real servers keeping the packet's port, thresholds", async () => {
    const stack = await E2EStack.create({ program: path.join(repoRoot, "examples", "fwmark"), config: { ...connection(), mark: "7" } });
    try {
      await stack.up();
      const save = await ipvsadmSave(d);
      expect(save).toContain("-A -f 7 -s wlc -p 1800");
      // ipvsadm -S leaves thresholds out; -L --thresholds shows them.
      const thresholds = await ipvsadmList(d, "--thresholds");
      for (const a of ["10.10.0.11", "10.10.0.12", "10.10.0.13"]) {
        expect(save).toContain(`-a -f 7 -r ${a}:0 -m -w 10`);
        expect(thresholds).toMatch(new RegExp(`-> ${a.replace(/\./g, "\\.")}:0\\s+500\\s+400\\s`));
      }
      expect((await stack.outputs()).service).toBe(`fwmark/ipv4/7@${d.host}:${d.port}`);
      await stack.destroy();
      expect((await ipvsadmSave(d)).trim()).toBe("");
    } finally {
      await stack.dispose();
    }
  });

  it("ipv6-udp-dns: a one-packet UDP service and its TCP twin on one IPv6 VIP", async () => {
    const stack = await E2EStack.create({
      program: path.join(repoRoot, "examples", "ipv6-udp-dns"),
      // Written uncompressed on purpose: state and the kernel agree on the compressed form.
      config: { ...connection(), vip: "2001:DB8:53:0::53", resolvers: JSON.stringify(["fd00:10:0::11", "fd00:10:0::12"]) },
    });
    try {
      await stack.up();
      const save = await ipvsadmSave(d);
      expect(save).toContain("-A -u [2001:db8:53::53]:53 -s rr -o");
      expect(save).toContain("-A -t [2001:db8:53::53]:53 -s lc");
      for (const p of ["-u", "-t"])
        for (const r of ["fd00:10::11", "fd00:10::12"]) expect(save).toContain(`-a ${p} [2001:db8:53::53]:53 -r [${r}]:53 -m -w 1`);
      // A second up is a no-op: the spelling of the VIP is no change.
      const again = await stack.up();
      expect(again.stdout).toMatch(/7 unchanged/);
      await stack.destroy();
      expect((await ipvsadmSave(d)).trim()).toBe("");
    } finally {
      await stack.dispose();
    }
  });
});
