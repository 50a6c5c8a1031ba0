// Issue 25 on a real director with a persistent disk: a local user cannot stall the root helper with a fake
// keepalived, a state directory that is its own mount can be emptied, an op applied before its request ran out of time
// keeps its ledger record, and one damaged (plus one stray) stack file does not keep boot from restoring the others.
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDirector, type LabDirector } from "../director";
import { ipvsadm } from "../ipvsadm";
import { HELPER, installHelper, svcOp, tcp, type HelperError, type HelperResult } from "./helperLab";

const A = "acme/lb/prod";
const B = "acme/web/prod";
const C = "acme/api/prod";
const STATE = "/var/lib/pulumi-ipvs";
const STACKS = `${STATE}/stacks`;
/** The helper's stack file name: the first 32 hex digits of sha256(owner). */
const stackFile = (owner: string) => `${STACKS}/${createHash("sha256").update(owner).digest("hex").slice(0, 32)}.json`;
const HUNG_PIDS = "/run/hung-modprobe.pids";
/** A shell loop head over the processes whose comm is keepalived (`$p` is /proc/PID); the caller ends it with "done". */
const EACH_KEEPALIVED = `for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = keepalived ] || continue;`;

interface Answer {
  code: number;
  ms: number;
  stderr: string;
  results: HelperResult[];
  error?: HelperError;
}

describe("ipvs-helper hardening (issue 25) on a real director with a persistent disk", () => {
  let d: LabDirector;

  beforeAll(async () => {
    d = await startDirector({ persistentDisk: true });
    await installHelper(d);
  });

  afterAll(async () => {
    await d?.stop();
  });

  /** Runs one request through `ipvs-helper apply` and times it; the ssh timeout only bounds a hang. */
  async function applyTimed(args: string, ops: object[]): Promise<Answer> {
    const start = Date.now();
    const res = await d.exec(`${HELPER} apply ${args}`, { stdin: JSON.stringify({ v: 1, ops }), check: false, timeoutMs: 120_000 });
    const out = JSON.parse(res.stdout) as { results: HelperResult[]; error?: HelperError };
    return { code: res.code, ms: Date.now() - start, stderr: res.stderr, ...out };
  }

  it("an empty state directory that is its own mount stays in place when a stack's last record goes", async () => {
    await d.exec(`mkdir -p /srv/ipvs-state ${STATE} && chmod 700 /srv/ipvs-state ${STATE} && mount --bind /srv/ipvs-state ${STATE}`);
    try {
      const svc = tcp("192.0.2.50", 80);
      const created = await applyTimed("", [svcOp(svc, { scheduler: "rr" }, { owner: A, onExisting: "fail" })]);
      expect(created.results[0]).toMatchObject({ ok: true, created: true });
      // Destroying the stack's last entry empties the ledger: the directory cannot go (EBUSY) and is left.
      const destroyed = await applyTimed("", [{ op: "deleteService", service: svc, owner: A }]);
      expect(destroyed.results[0]).toMatchObject({ ok: true, changed: true });
      expect((await d.exec(`grep -c ' ${STATE} ' /proc/mounts; ls -A ${STATE}`)).stdout).toBe("1\n");
      expect(await ipvsadm(d, "-Sn")).toBe("");
    } finally {
      await d.exec(`umount ${STATE}; rmdir ${STATE} 2>/dev/null; true`);
    }
  });

  it("a process named keepalived that a user runs is not read; root's that names a FIFO fails the adopt at once", async () => {
    await d.exec("ipvsadm -A -t 192.0.2.60:80 -s rr");
    // As the unprivileged user: keepalived as a copy of bash (the user's own executable) naming a FIFO, and as a bash
    // script (root's /bin/bash runs it, comm is the script's name) naming an 8 TiB sparse file.
    await d.exec(
      `su -s /bin/sh ${d.sudoUser} -c 'set -e; mkdir -p /tmp/ka/bin; mkfifo /tmp/ka/fifo; truncate -s 8796093022208 /tmp/ka/huge; ` +
        `cp /bin/bash /tmp/ka/keepalived; printf "#!/bin/bash\\nwhile :; do sleep 1; done\\n" > /tmp/ka/bin/keepalived; chmod 755 /tmp/ka/bin/keepalived; ` +
        `setsid /tmp/ka/keepalived -c "while :; do sleep 1; done" -f /tmp/ka/fifo </dev/null >/dev/null 2>&1 & ` +
        `setsid /tmp/ka/bin/keepalived -f /tmp/ka/huge </dev/null >/dev/null 2>&1 &'`,
    );
    try {
      const running = (await d.exec(`${EACH_KEEPALIVED} stat -c %U $p; done`)).stdout;
      expect(running.trim().split("\n")).toEqual([d.sudoUser, d.sudoUser]);
      // The adopt and another stack's op at once: neither waits for the other's deadline (10 s) nor for the lock.
      const [adopt, other] = await Promise.all([
        applyTimed("--timeout-seconds 10", [svcOp(tcp("192.0.2.60", 80), { scheduler: "wlc" }, { owner: A, onExisting: "update" })]),
        applyTimed("--timeout-seconds 10", [svcOp(tcp("192.0.2.61", 80), { scheduler: "rr" }, { owner: B, onExisting: "fail" })]),
      ]);
      expect(adopt.results[0]).toMatchObject({ ok: true, changed: true });
      expect(other.results[0]).toMatchObject({ ok: true, created: true });
      expect(adopt.ms).toBeLessThan(5000);
      expect(other.ms).toBeLessThan(5000);

      // Root's keepalived (a root script of that name) naming the FIFO: trusted, so its configuration is read, which
      // fails at once instead of blocking, and the adopt says it cannot be decided.
      await d.exec("ipvsadm -A -t 192.0.2.62:80 -s rr; setsid /tmp/ka/bin/keepalived -f /tmp/ka/fifo </dev/null >/dev/null 2>&1 &");
      const refused = await applyTimed("--timeout-seconds 10", [svcOp(tcp("192.0.2.62", 80), { scheduler: "wlc" }, { owner: A, onExisting: "update" })]);
      expect(refused.results[0]).toMatchObject({ ok: false, error: { code: "MANAGED_ELSEWHERE",
        message: expect.stringContaining("MANAGED_ELSEWHERE cannot be decided: whether kube-proxy or keepalived manages the address could not be told: reading keepalived's configuration /tmp/ka/fifo: it is not a regular file") } });
      expect(refused.ms).toBeLessThan(5000);
    } finally {
      await d.exec(`${EACH_KEEPALIVED} kill -9 \${p#/proc/}; done; ipvsadm -D -t 192.0.2.62:80; rm -rf /tmp/ka`);
    }
  });

  it("an op applied before its request ran out of time is recorded, and boot restores it after a reboot", async () => {
    // Two scheduler modules whose modprobe hangs, each within the per-call limit (2 s) but together past the request's
    // (3 s); the op before them succeeded.
    await d.exec(
      `mv /sbin/modprobe /sbin/modprobe.lab-real && printf '#!/bin/sh\\necho $$ >> ${HUNG_PIDS}\\nexec sleep 86400\\n' > /sbin/modprobe && chmod 755 /sbin/modprobe`,
    );
    let a: Answer;
    try {
      a = await applyTimed("--timeout-seconds 3", [
        svcOp(tcp("192.0.2.70", 80), { scheduler: "rr" }, { owner: C, onExisting: "fail" }),
        { op: "getTimeouts" }, // not pipelined: the service's write is answered before the next op
        svcOp(tcp("192.0.2.71", 80), { scheduler: "sh" }, { owner: C, onExisting: "fail" }),
        svcOp(tcp("192.0.2.72", 80), { scheduler: "lblc" }, { owner: C, onExisting: "fail" }),
      ]);
    } finally {
      await d.exec(`mv -f /sbin/modprobe.lab-real /sbin/modprobe && kill $(cat ${HUNG_PIDS}) 2>/dev/null; rm -f ${HUNG_PIDS}`);
    }
    expect(a.code).toBe(3);
    expect(a.error?.code).toBe("TIMEOUT");
    expect(a.results[0]).toMatchObject({ ok: true, created: true });
    expect(a.results[3]).toMatchObject({ ok: false, error: { code: "TIMEOUT" } });
    // Its record is on disk: owners lists it, and no other stack may adopt it.
    expect((await d.exec(`${HELPER} owners`)).stdout).toContain(`stack ${C} (`);
    const [adopt] = (await applyTimed("", [svcOp(tcp("192.0.2.70", 80), { scheduler: "wlc" }, { owner: B, onExisting: "update" })])).results;
    expect(adopt).toMatchObject({ ok: false, error: { code: "OWNED", message: expect.stringContaining(`belongs to stack ${C}`) } });
  });

  it("a damaged stack file and a stray file block only what they might hold, and boot restores every other stack", async () => {
    await d.exec(`cp ${stackFile(A)} ${STACKS}/backup-copy.json && printf '{"v":2,"owner":' > ${stackFile(B)}`);
    const res = await applyTimed("", [
      svcOp(tcp("192.0.2.60", 80), { scheduler: "lc" }, { owner: A }), // A's own: goes on
      svcOp(tcp("192.0.2.63", 80), { scheduler: "rr" }, { owner: A, onExisting: "fail" }), // new: B's file might claim it
      svcOp(tcp("192.0.2.61", 80), { scheduler: "wlc" }, { owner: B }), // B's own: its file cannot be read
    ]);
    expect(res.results[0]).toMatchObject({ ok: true, changed: true });
    for (const r of res.results.slice(1)) {
      expect(r).toMatchObject({ ok: false, error: { code: "LEDGER", message: expect.stringContaining(`the ledger file ${stackFile(B)} is not a valid stack record`) } });
      expect(r.error?.message).toContain(`move it out of ${STACKS}`);
    }
    expect(res.stderr).toContain(`ignoring ${STACKS}/backup-copy.json in the ledger directory`);

    await d.reboot();

    // A's and C's entries are back; B's (whose file is damaged) is not, and the boot unit says why and fails.
    const table = await ipvsadm(d, "-Sn");
    expect(table).toContain("-A -t 192.0.2.60:80 -s lc\n");
    expect(table).toContain("-A -t 192.0.2.70:80 -s rr\n");
    expect(table).not.toContain("192.0.2.61");
    const log = (await d.exec("cat /var/log/boot-units.log")).stdout;
    expect(log).toContain(`skipped, its entries not restored: the ledger file ${stackFile(B)} is not a valid stack record`);
    expect(log).toContain(`ignoring ${STACKS}/backup-copy.json`);
    expect(log).toMatch(/exit 1\n$/);
  });
});
