// ipvs-helper's ownership ledger on a real kernel (PROTOCOL.md "Ownership ledger"), with the real ipvsadm as the
// oracle: two stacks on one service, entries nobody owns, `owners`, `boot` after a flush, and kube-proxy's VIPs.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDirector, type LabDirector } from "../director";
import { ipvsadm } from "../ipvsadm";
import { apply, applyOk, destOp, HELPER, installHelper, ipvsadmAll, svcOp, tcp } from "./helperLab";

const A = "acme/lb/prod";
const B = "acme/web/prod";
const STATE = "/var/lib/pulumi-ipvs";

describe("ipvs-helper ownership ledger on a real kernel", () => {
  let d: LabDirector;

  beforeAll(async () => {
    d = await startDirector();
    await installHelper(d);
  });

  afterAll(async () => {
    await d?.stop();
  });

  it("keeps two stacks and the unowned entries apart, lists them, and boot restores exactly the owned ones", async () => {
    await d.exec(`ipvsadm -C; rm -rf ${STATE}`);
    const web = tcp("192.0.2.40", 80);
    // An entry nobody owns (made by hand) and a hand-added real server on A's service.
    await ipvsadmAll(d, ["-A -t 192.0.2.41:80 -s rr", "-a -t 192.0.2.41:80 -r 10.30.0.9:80 -m"]);
    await applyOk(d, [
      svcOp(web, { scheduler: "wlc" }, { owner: A, onExisting: "fail" }),
      destOp(web, { address: "10.30.0.1", port: 8080, forwarding: "nat", weight: 2 }, { owner: A }),
      destOp(web, { address: "10.30.0.2", port: 8080, forwarding: "nat", weight: 3 }, { owner: B }),
    ]);
    await ipvsadmAll(d, ["-a -t 192.0.2.40:80 -r 10.30.0.3:8080 -m"]);
    const table = await ipvsadm(d, "-Sn");

    // B may neither adopt nor delete A's service; A may not delete B's real server.
    const refused = await apply(d, [
      svcOp(web, { scheduler: "rr" }, { owner: B }),
      { op: "deleteService", service: web, owner: B },
      { op: "deleteDest", service: web, dest: { address: "10.30.0.2", port: 8080 }, owner: A },
    ]);
    for (const r of refused.slice(0, 2)) {
      expect(r.error?.code).toBe("OWNED");
      expect(r.error?.message).toContain(`belongs to stack ${A}`);
    }
    expect(refused[2]!.error).toMatchObject({ code: "OWNED", message: expect.stringContaining(`belongs to stack ${B}`) });
    // A's delete names the real servers it would take down with the service.
    const [foreign] = await apply(d, [{ op: "deleteService", service: web, owner: A }]);
    expect(foreign!.error?.code).toBe("FOREIGN_DESTS");
    expect(foreign!.error?.message).toContain(`10.30.0.2:8080 (stack ${B})`);
    expect(foreign!.error?.message).toContain("10.30.0.3:8080 (no owner)");
    // The unowned service: another owner's create is EXISTS, and the ops of both stacks left it alone.
    const [exists] = await apply(d, [svcOp(tcp("192.0.2.41", 80), {}, { owner: B, onExisting: "fail" })]);
    expect(exists!.error?.code).toBe("EXISTS");
    expect(await ipvsadm(d, "-Sn")).toBe(table);

    // owners: what an operator on the director sees; the ledger is root-only.
    const text = (await d.exec(`${HELPER} owners`)).stdout;
    expect(text).toContain(`stack ${A} (`);
    expect(text).toContain("  -A -t 192.0.2.40:80 -s wlc\n  -a -t 192.0.2.40:80 -r 10.30.0.1:8080 -m -w 2\n");
    expect(text).toContain(`stack ${B} (`);
    expect(text).toContain("  -a -t 192.0.2.40:80 -r 10.30.0.2:8080 -m -w 3\n");
    expect(text).not.toContain("192.0.2.41");
    const json = JSON.parse((await d.exec(`${HELPER} owners --json`)).stdout) as { stacks: { owner: string; services: unknown[]; dests: unknown[] }[] };
    expect(json.stacks.map((s) => [s.owner, s.services.length, s.dests.length])).toEqual([[A, 1, 1], [B, 0, 1]]);
    expect((await d.exec(`stat -c '%U %a' ${STATE} ${STATE}/stacks ${STATE}/stacks/*.json`)).stdout).toBe("root 700\nroot 700\nroot 600\nroot 600\n");

    // A reboot's empty table: boot restores exactly the owned entries and touches nothing else.
    await d.exec("ipvsadm -C");
    await ipvsadmAll(d, ["-A -t 192.0.2.42:80 -s sh"]);
    const boot = await d.exec(`${HELPER} boot`);
    expect(boot.stdout.trim().split("\n").sort()).toEqual([
      `add -A -t 192.0.2.40:80 -s wlc (stack ${A})`,
      `add -a -t 192.0.2.40:80 -r 10.30.0.1:8080 -m -w 2 (stack ${A})`,
      `add -a -t 192.0.2.40:80 -r 10.30.0.2:8080 -m -w 3 (stack ${B})`,
    ]);
    expect(await ipvsadm(d, "-Sn")).toBe(
      "-A -t 192.0.2.40:80 -s wlc\n-a -t 192.0.2.40:80 -r 10.30.0.1:8080 -m -w 2\n-a -t 192.0.2.40:80 -r 10.30.0.2:8080 -m -w 3\n" +
        "-A -t 192.0.2.42:80 -s sh\n",
    );
    expect((await d.exec(`${HELPER} boot`)).stdout).toBe("");

    // Both stacks destroy: with withForeignDests A takes B's real server along; nothing is left of the ledger.
    await applyOk(d, [{ op: "deleteService", service: web, owner: A, withForeignDests: true }]);
    expect(await ipvsadm(d, "-Sn")).toBe("-A -t 192.0.2.42:80 -s sh\n");
    expect((await d.exec(`test -e ${STATE} && echo left || echo gone`)).stdout).toBe("gone\n");
  });

  it("a real server whose resource was renamed with aliases moves to the new URN with formerHolder", async () => {
    await d.exec(`ipvsadm -C; rm -rf ${STATE}`);
    const web = tcp("192.0.2.44", 80);
    const dest = { address: "10.30.0.4", port: 8080, forwarding: "nat", weight: 2 };
    const OLD = "urn:pulumi:prod::lb::pulumi-nodejs:dynamic/ipvs:RealServer::app-1";
    const NEW = "urn:pulumi:prod::lb::pulumi-nodejs:dynamic/ipvs:RealServer::web-1";
    await applyOk(d, [svcOp(web, { scheduler: "rr" }, { owner: A }), destOp(web, dest, { owner: A, holder: OLD })]);
    const table = await ipvsadm(d, "-Sn");
    const holders = async () =>
      (JSON.parse((await d.exec(`${HELPER} owners --json`)).stdout) as { stacks: { owner: string; dests: { holder?: string }[] }[] }).stacks.map((s) => [s.owner, s.dests.map((x) => x.holder)]);

    // Another URN than the recorded one as formerHolder, or another stack naming it: refused as before.
    const refused = await apply(d, [
      destOp(web, dest, { owner: A, holder: NEW, formerHolder: "urn:pulumi:prod::lb::pulumi-nodejs:dynamic/ipvs:RealServer::other" }),
      destOp(web, dest, { owner: B, holder: NEW, formerHolder: OLD }),
    ]);
    expect(refused[0]!.error).toMatchObject({ code: "OWNED", message: expect.stringContaining(`held by another resource of this stack, ${OLD}`) });
    expect(refused[1]!.error).toMatchObject({ code: "OWNED", message: expect.stringContaining(`belongs to stack ${A}`) });
    expect(await holders()).toEqual([[A, [OLD]]]);

    // The move: accepted, the kernel untouched, the ledger names the new URN; the old one is now refused.
    await applyOk(d, [destOp(web, dest, { owner: A, holder: NEW, formerHolder: OLD })]);
    expect(await ipvsadm(d, "-Sn")).toBe(table);
    expect(await holders()).toEqual([[A, [NEW]]]);
    const [old] = await apply(d, [{ op: "deleteDest", service: web, dest: { address: dest.address, port: dest.port }, owner: A, holder: OLD }]);
    expect(old!.error).toMatchObject({ code: "OWNED", message: expect.stringContaining(NEW) });

    await applyOk(d, [{ op: "deleteService", service: web, owner: A }]);
    expect(await ipvsadm(d, "-Sn")).toBe("");
  });

  it("refuses to adopt a VIP on kube-proxy's kube-ipvs0 interface", async () => {
    await d.exec(`ipvsadm -C; rm -rf ${STATE}; ip link add kube-ipvs0 type dummy; ip addr add 10.96.0.10/32 dev kube-ipvs0`);
    try {
      await ipvsadmAll(d, ["-A -t 10.96.0.10:53 -s rr", "-A -t 192.0.2.43:80 -s rr"]);
      const [kube, other] = await apply(d, [svcOp(tcp("10.96.0.10", 53), { scheduler: "wlc" }, { owner: A }), svcOp(tcp("192.0.2.43", 80), {}, { owner: A })]);
      expect(kube!.error?.code).toBe("MANAGED_ELSEWHERE");
      expect(kube!.error?.message).toContain("kube-proxy (10.96.0.10 is an address of interface kube-ipvs0)");
      expect(other!.ok).toBe(true);
      // ipvsadm lists services in hash order: compare the lines as a set.
      expect((await ipvsadm(d, "-Sn")).trim().split("\n").sort()).toEqual(["-A -t 10.96.0.10:53 -s rr", "-A -t 192.0.2.43:80 -s rr"]);
      await applyOk(d, [{ op: "deleteService", service: tcp("192.0.2.43", 80), owner: A }]);
    } finally {
      await d.exec("ip link del kube-ipvs0");
    }
  });
});
