// ipvs-helper fails closed and never hangs: a director whose ip_vs cannot be loaded answers every op with
// IPVS_UNAVAILABLE, and one whose modprobe hangs (so the kernel's own autoload of ip_vs blocks inside sendmsg) answers
// with TIMEOUT at the helper's deadline, exits, and leaves nothing behind. ip_vs is not loaded at boot in the lab.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDirector, type LabDirector } from "../director";
import { ipvsadm } from "../ipvsadm";
import { destOp, HELPER, installHelper, svcOp, tcp, type HelperError, type HelperResult } from "./helperLab";

const IP_VS_KO = "/lib/modules/$(uname -r)/kernel/net/netfilter/ipvs/ip_vs.ko";
const HUNG_PIDS = "/run/hung-modprobe.pids";

interface Answer {
  code: number;
  stderr: string;
  results: HelperResult[];
  error?: HelperError;
}

describe("ipvs-helper deadlines and unavailable IPVS on a real kernel", () => {
  let d: LabDirector;

  beforeAll(async () => {
    d = await startDirector();
    await installHelper(d);
    expect((await d.exec("cat /proc/sys/kernel/modprobe")).stdout.trim()).toBe("/sbin/modprobe");
    await d.exec("! grep -q '^ip_vs ' /proc/modules");
  });

  afterAll(async () => {
    await d?.stop();
  });

  /** Runs one request through `ipvs-helper apply` with its arguments; the ssh timeout only bounds a hang. */
  async function applyRaw(args: string, ops: object[]): Promise<Answer> {
    const res = await d.exec(`${HELPER} apply ${args}`, { stdin: JSON.stringify({ v: 1, ops }), check: false, timeoutMs: 120_000 });
    const out = JSON.parse(res.stdout) as { results: HelperResult[]; error?: HelperError };
    return { code: res.code, stderr: res.stderr, ...out };
  }

  const svc = tcp("192.0.2.10", 80);
  const ops = [svcOp(svc, { scheduler: "rr" }), destOp(svc, { address: "10.0.0.11", port: 80, forwarding: "nat" }), { op: "getTimeouts" }];

  it("answers every op with IPVS_UNAVAILABLE naming the module when ip_vs cannot be loaded", async () => {
    await d.exec(`mv ${IP_VS_KO} ${IP_VS_KO}.away && ! modprobe ip_vs 2>/dev/null`);
    try {
      const a = await applyRaw("", ops);
      expect(a.code).toBe(0);
      expect(a.results).toHaveLength(ops.length);
      for (const r of a.results) {
        expect(r).toMatchObject({ ok: false, error: { code: "IPVS_UNAVAILABLE", message: expect.stringContaining("module ip_vs could not be loaded: modprobe: ") } });
      }
    } finally {
      await d.exec(`mv ${IP_VS_KO}.away ${IP_VS_KO}`);
    }
    await d.exec("! grep -q '^ip_vs ' /proc/modules");
  });

  it("answers TIMEOUT at its deadline when modprobe hangs, exits, and the next helper works once modprobe is back", async () => {
    // The kernel autoloads ip_vs through /sbin/modprobe when the helper looks the IPVS family up, and waits for it.
    await d.exec(
      `mv /sbin/modprobe /sbin/modprobe.lab-real && printf '#!/bin/sh\\necho $$ >> ${HUNG_PIDS}\\nexec sleep 86400\\n' > /sbin/modprobe && chmod 755 /sbin/modprobe`,
    );
    let a: Answer;
    try {
      a = await applyRaw("--timeout-seconds 5", ops);
      // Nothing of the helper is left: not the process, whose goroutine was stuck in the kernel.
      await d.exec(`for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" != ipvs-helper ] || exit 1; done`);
      expect((await d.exec(`cat ${HUNG_PIDS}`)).stdout.trim()).not.toBe("");
    } finally {
      await d.exec(`mv -f /sbin/modprobe.lab-real /sbin/modprobe && kill $(cat ${HUNG_PIDS}) 2>/dev/null; rm -f ${HUNG_PIDS}`);
    }
    expect(a.code).toBe(3);
    expect(a.results).toHaveLength(ops.length);
    expect(a.results[0]).toMatchObject({ ok: false, error: { code: "TIMEOUT",
      message: "ensuring service tcp 192.0.2.10:80 did not finish within 5s (stopped while connecting to IPVS, which loads module ip_vs when it is missing: a kernel call or modprobe is hanging on this director)." } });
    expect(a.results[1]).toMatchObject({ ok: false, error: { code: "TIMEOUT",
      message: expect.stringMatching(/^ensuring real server 10\.0\.0\.11:80 of service tcp 192\.0\.2\.10:80 did not finish within 5s \(the request stopped at op 0, /) } });
    expect(a.results[2]).toMatchObject({ ok: false, error: { code: "TIMEOUT", message: expect.stringContaining("reading the connection timeouts did not finish within 5s") } });
    expect(a.error?.code).toBe("TIMEOUT");
    expect(a.stderr).toContain("did not finish within 5s");

    const b = await applyRaw("--timeout-seconds 30", ops);
    expect([b.code, b.error]).toEqual([0, undefined]);
    expect(b.results.map((r) => r.ok)).toEqual([true, true, true]);
    expect(await ipvsadm(d, "-Sn")).toBe("-A -t 192.0.2.10:80 -s rr\n-a -t 192.0.2.10:80 -r 10.0.0.11:80 -m -w 1\n");
    await d.exec("ipvsadm -C");
  });
});
