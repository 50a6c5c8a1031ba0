// ipvs-helper's ensure/delete/get semantics, error codes and messages, serve mode and kernel module loading,
// checked against a real kernel with the real ipvsadm as the oracle.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDirector, type LabDirector } from "../director";
import { ipvsadm } from "../ipvsadm";
import { apply, applyOk, destOp, fwmark, HELPER, installHelper, ipvsadmAll, svcOp, tcp, udp } from "./helperLab";

const MODDIR = "/lib/modules/$(uname -r)/kernel/net/netfilter/ipvs";

describe("ipvs-helper semantics on a real kernel", () => {
  let d: LabDirector;

  beforeAll(async () => {
    d = await startDirector();
    await installHelper(d);
  });

  afterAll(async () => {
    await d?.stop();
  });

  it("ensureService changes only the given field and keeps every other one", async () => {
    await d.exec("ipvsadm -C");
    await ipvsadmAll(d, ["-A -u 192.0.2.10:5060 -s sh -b sh-port -p 100 -M 255.255.255.0 --pe sip"]);
    const [r] = await applyOk(d, [svcOp(udp("192.0.2.10", 5060), { onePacket: true })]);
    expect(r).toMatchObject({ changed: true, created: false });
    expect(await ipvsadm(d, "-Sn")).toBe("-A -u 192.0.2.10:5060 -s sh -p 100 -M 255.255.255.0 --pe sip -o -b sh-port\n");
    // Removing persistence is explicit (null); the engine stays, as with ipvsadm -E.
    await applyOk(d, [svcOp(udp("192.0.2.10", 5060), { persistence: null, persistenceEngine: "" })]);
    expect(await ipvsadm(d, "-Sn")).toBe("-A -u 192.0.2.10:5060 -s sh -o -b sh-port\n");
  });

  it("ensureDest changes only the given field: tunnel and thresholds survive a weight change", async () => {
    await d.exec("ipvsadm -C");
    await ipvsadmAll(d, ["-A -t 192.0.2.11:80 -s rr", "-a -t 192.0.2.11:80 -r 10.20.0.1 -i --tun-type gue --tun-port 6080 --tun-csum -w 3 -x 10 -y 2"]);
    const before = await ipvsadm(d, "-Ln --thresholds");
    const [r, again] = await applyOk(d, [destOp(tcp("192.0.2.11", 80), { address: "10.20.0.1", port: 80, weight: 5 }),
      destOp(tcp("192.0.2.11", 80), { address: "10.20.0.1", port: 80, weight: 5 })]);
    expect([r!.changed, again!.changed]).toEqual([true, false]);
    expect(await ipvsadm(d, "-Sn")).toBe("-A -t 192.0.2.11:80 -s rr\n-a -t 192.0.2.11:80 -r 10.20.0.1:80 -i -w 5 --tun-type gue --tun-port 6080 --tun-csum\n");
    expect(await ipvsadm(d, "-Ln --thresholds")).toBe(before);
    // Leaving tunnel forwarding drops the tunnel settings (they mean nothing without it).
    await applyOk(d, [destOp(tcp("192.0.2.11", 80), { address: "10.20.0.1", port: 80, forwarding: "nat" })]);
    expect(await ipvsadm(d, "-Sn")).toContain("-r 10.20.0.1:80 -m -w 5\n");
  });

  it("deletes of absent entries succeed, gets of absent entries return null", async () => {
    await d.exec("ipvsadm -C");
    await ipvsadmAll(d, ["-A -t 192.0.2.12:80", "-a -t 192.0.2.12:80 -r 10.10.0.11 -g"]);
    const svc = tcp("192.0.2.12", 80);
    const res = await applyOk(d, [
      { op: "deleteDest", service: svc, dest: { address: "10.10.0.11" } },
      { op: "deleteDest", service: svc, dest: { address: "10.10.0.11" } },
      { op: "getDest", service: svc, dest: { address: "10.10.0.11" } },
      { op: "deleteService", service: svc },
      { op: "deleteService", service: svc },
      { op: "deleteDest", service: svc, dest: { address: "10.10.0.11" } },
      { op: "getService", service: svc, withDests: true },
      { op: "getDest", service: svc, dest: { address: "10.10.0.11" } },
    ]);
    expect(res.map((r) => r.changed)).toEqual([true, false, undefined, true, false, false, undefined, undefined]);
    expect([res[2]!.dest, res[6]!.service, res[7]!.dest]).toEqual([null, null, null]);
    expect(await ipvsadm(d, "-Sn")).toBe("");
  });

  it("errors carry a stable code, the errno and a sentence naming the entry; later ops still run", async () => {
    await d.exec("ipvsadm -C");
    await ipvsadmAll(d, ["-A -t 192.0.2.13:80 -s wlc -p 60", "-a -t 192.0.2.13:80 -r 10.10.0.11:80 -m -w 2"]);
    const svc = tcp("192.0.2.13", 80);
    const res = await apply(d, [
      svcOp(svc, {}, { onExisting: "fail" }),
      destOp(svc, { address: "10.10.0.11", port: 80 }, { onExisting: "fail" }),
      destOp(tcp("192.0.2.99", 80), { address: "10.10.0.11", port: 80, forwarding: "nat" }),
      { op: "zero", service: tcp("192.0.2.99", 80) },
      destOp(svc, { address: "10.10.0.12", port: 80, forwarding: "nat", upperThreshold: 5, lowerThreshold: 10 }),
      destOp(svc, { address: "10.10.0.13", port: 80, forwarding: "nat", lowerThreshold: 1 }),
      svcOp(tcp("192.0.2.14", 80), { scheduler: "foo" }),
      svcOp(tcp("192.0.2.14", 80), { scheduler: "twos" }),
      destOp(svc, { address: "10.10.0.14", port: 8080, forwarding: "dr" }),
      { op: "getService", service: svc },
      // A create reads nothing first: the kernel's own ESRCH says the service is missing.
      destOp(tcp("192.0.2.99", 80), { address: "10.10.0.11", port: 80, forwarding: "nat" }, { onExisting: "fail" }),
    ]);
    const errs = res.map((r) => r.error);
    expect(errs[0]).toEqual({ code: "EXISTS", errno: 17, message: "service tcp 192.0.2.13:80 already exists (now: -A -t 192.0.2.13:80 -s wlc -p 60)." });
    expect(errs[1]).toEqual({ code: "EXISTS", errno: 17,
      message: "real server 10.10.0.11:80 of service tcp 192.0.2.13:80 already exists (now: -a -t 192.0.2.13:80 -r 10.10.0.11:80 -m -w 2)." });
    expect(errs[2]).toEqual({ code: "SERVICE_NOT_FOUND", errno: 3,
      message: "adding real server 10.10.0.11:80 to service tcp 192.0.2.99:80 failed: the service does not exist." });
    expect(errs[3]).toEqual({ code: "NOT_FOUND", errno: 3, message: "zeroing the counters of service tcp 192.0.2.99:80 failed: the service does not exist." });
    expect(errs[4]).toEqual({ code: "OUT_OF_RANGE", errno: 34,
      message: "adding real server 10.10.0.12:80 to service tcp 192.0.2.13:80 failed: lower threshold 10 is above upper threshold 5 (the kernel requires lower <= upper, and an upper threshold of 0 allows no lower threshold)." });
    expect(errs[5]).toMatchObject({ code: "OUT_OF_RANGE", errno: 34, message: expect.stringContaining("lower threshold 1 is above upper threshold 0") });
    expect(errs[6]).toEqual({ code: "BAD_REQUEST", errno: 0,
      message: "creating service tcp 192.0.2.14:80 refused: service tcp 192.0.2.14:80: unknown scheduler \"foo\" (known: rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh twos)" });
    // twos landed in Linux 6.2; the lab runs Debian's 6.1, so it is refused before anything reaches the kernel.
    expect(errs[7]).toMatchObject({ code: "UNSUPPORTED_KERNEL", errno: 0,
      message: expect.stringMatching(/^creating service tcp 192\.0\.2\.14:80 refused: .*scheduler twos needs Linux 6\.2 or newer; this director runs 6\.1/) });
    expect(errs[8]).toMatchObject({ code: "BAD_REQUEST", message: expect.stringContaining("with dr forwarding the real server port must equal the service port 80") });
    expect(res[9]).toMatchObject({ ok: true, service: { scheduler: "wlc", persistence: { timeout: 60 } } });
    expect(errs[10]).toEqual(errs[2]);
    expect(await ipvsadm(d, "-Sn")).toBe("-A -t 192.0.2.13:80 -s wlc -p 60\n-a -t 192.0.2.13:80 -r 10.10.0.11:80 -m -w 2\n");
  });

  it("serve answers one response line per request line, in order, on one process", async () => {
    await d.exec("ipvsadm -C");
    const lines = [
      { v: 1, ops: [svcOp(fwmark(7), { scheduler: "rr" })] },
      { v: 1, ops: [destOp(fwmark(7), { address: "10.10.0.11", port: 0 }), { op: "bogus" }] },
      { v: 2, ops: [{ op: "dump" }] },
      { v: 1, ops: [{ op: "getService", service: fwmark(7), withDests: true }] },
    ].map((r) => JSON.stringify(r)).join("\n") + "\nnot json\n";
    const out = (await d.exec(`${HELPER} serve`, { stdin: lines })).stdout.trim().split("\n").map((l) => JSON.parse(l));
    expect(out).toHaveLength(5);
    expect(out[0].results[0]).toMatchObject({ ok: true, created: true });
    expect(out[1].results.map((r: { ok: boolean }) => r.ok)).toEqual([true, false]);
    expect(out[1].results[1].error).toMatchObject({ code: "BAD_REQUEST", message: expect.stringContaining("unknown operation \"bogus\"") });
    expect(out[2].error).toMatchObject({ code: "BAD_REQUEST", message: "protocol version 2 is not supported; this helper speaks version 1" });
    expect(out[3].results[0].service.dests).toHaveLength(1);
    expect(out[4].error.code).toBe("BAD_REQUEST");
  });

  it("loads an unloaded scheduler module, and names a module that cannot be loaded", async () => {
    await d.exec("ipvsadm -C; rmmod ip_vs_mh 2>/dev/null; ! grep -q '^ip_vs_mh ' /proc/modules");
    const [r] = await applyOk(d, [svcOp(tcp("192.0.2.20", 80), { scheduler: "mh" })]);
    expect(r!.created).toBe(true);
    expect((await d.exec("grep -c '^ip_vs_mh ' /proc/modules")).stdout.trim()).toBe("1");
    await d.exec(`ipvsadm -C; rmmod ip_vs_mh; mv ${MODDIR}/ip_vs_mh.ko ${MODDIR}/ip_vs_mh.ko.away`);
    try {
      const [f] = await apply(d, [svcOp(tcp("192.0.2.20", 80), { scheduler: "mh" })]);
      expect(f!.error).toMatchObject({ code: "SCHEDULER_UNAVAILABLE", errno: 2,
        message: expect.stringContaining("scheduler 'mh' is not available on this kernel (module ip_vs_mh could not be loaded: modprobe: ") });
    } finally {
      await d.exec(`mv ${MODDIR}/ip_vs_mh.ko.away ${MODDIR}/ip_vs_mh.ko`);
    }
    expect(await ipvsadm(d, "-Sn")).toBe("");
  });

  it("loads ip_vs itself when the IPVS family is missing", async () => {
    await d.exec("ipvsadm -C; for m in $(grep -o '^ip_vs_[a-z_]*' /proc/modules); do rmmod $m; done; rmmod ip_vs; ! grep -q '^ip_vs ' /proc/modules");
    // (Looking the family up may already make the kernel load ip_vs by its genetlink alias; either way it must work.)
    const [r] = await applyOk(d, [svcOp(tcp("192.0.2.21", 80), { scheduler: "rr" })]);
    expect(r!.created).toBe(true);
    expect((await d.exec("grep -c '^ip_vs ' /proc/modules")).stdout.trim()).toBe("1");
    expect(await ipvsadm(d, "-Sn")).toBe("-A -t 192.0.2.21:80 -s rr\n");
  });
});
