// Deadlines and lost answers against a real lab director: a hung helper, a start script that never prints, a bastion
// whose next hop is black-holed, and a create whose answer is lost after the kernel applied it. The deadlines here
// only bound hangs; no test asserts how long anything took.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { Director } from "../../provider/director";
import { directorOps, helperStats } from "../../provider/helperClient";
import { HelperError, type ServiceKey } from "../../provider/protocol";
import { closeAllSessions, DirectorError, sessionFor } from "../../provider/session";
import { startDirector, type LabDirector } from "../lab/director";
import { HELPER_SERVE, sessionDirector } from "./providerEngine";

let lab: LabDirector;

/** A blackhole: routed to a dummy interface (NOARP), so a SYN there goes out and is never answered. */
const BLACKHOLE = "198.51.100.7";

beforeAll(async () => {
  lab = await startDirector();
  await lab.exec("ip link add pibh0 type dummy && ip link set pibh0 up && ip route add 198.51.100.0/24 dev pibh0");
  // Installs the helper and loads ip_vs and ip_vs_rr with the default deadline, so short deadlines below only meet the faults.
  await directorOps(director()).ensureService({ family: "ipv4", protocol: "tcp", address: "192.0.2.1", port: 80, scheduler: "rr" });
});

afterAll(async () => {
  closeAllSessions();
  await lab?.stop();
});

const director = (extra: Partial<Director> = {}) => sessionDirector(lab, extra);

/** Signals the director's processes whose command line starts with `prefix`. */
const killByCmdline = (prefix: string, signal?: string) => lab.killByCmdline(`${prefix}*`, signal);

const tcp = (address: string): ServiceKey => ({ family: "ipv4", protocol: "tcp", address, port: 80 });
const target = () => `ops@127.0.0.1:${lab.port}`;

describe("operationTimeoutSeconds", () => {
  it("fails the ops of a batch the helper never answers, naming director, op and deadline; the next op gets a fresh helper", async () => {
    const d = director({ operationTimeoutSeconds: 3 });
    const ops = directorOps(d);
    await ops.getService(tcp("192.0.2.1"));
    const before = helperStats(d);
    // A stopped helper reads nothing and answers nothing, as one stuck in the kernel would.
    await killByCmdline(HELPER_SERVE, "STOP");
    try {
      const [create, read] = await Promise.all([
        ops.ensureService({ ...tcp("192.0.2.21"), scheduler: "rr" }, "fail").catch((e: unknown) => e),
        ops.getService(tcp("192.0.2.1")).catch((e: unknown) => e),
      ]);
      expect(create).toBeInstanceOf(DirectorError);
      expect((create as Error).message).toBe(
        `ensureService tcp/192.0.2.21:80 on ${target()}: no answer within 3 s (operationTimeoutSeconds); it may have been applied: if the next pulumi up says it already exists, check its settings on the director and set adopt: true for that up (or remove it there).`,
      );
      expect((read as Error).message).toBe(`getService tcp/192.0.2.1:80 on ${target()}: no answer within 3 s (operationTimeoutSeconds).`);
      expect(helperStats(d)).toMatchObject({ batches: before.batches + 1, resent: before.resent });
    } finally {
      // sudo stops itself when its command stops: resume both; the old helper finds its channel gone and exits.
      await killByCmdline(HELPER_SERVE, "CONT");
      await killByCmdline("sudo\\ -n\\ --", "CONT");
    }
    expect((await ops.getService(tcp("192.0.2.1")))?.scheduler).toBe("rr");
    expect(helperStats(d).starts).toBe(before.starts + 1);
  });

  it("fails with a deadline error when the helper's start never says ready (a sudo that hangs)", async () => {
    // Earlier on ops's PATH than the real sudo: a PAM stack or sudo that hangs.
    await lab.exec(`printf '#!/bin/sh\\nsleep 3600\\nexec /usr/bin/sudo "$@"\\n' > /usr/local/bin/sudo && chmod 755 /usr/local/bin/sudo`);
    const d = director({ operationTimeoutSeconds: 3, connectTimeoutSeconds: 19 });
    try {
      const err = await directorOps(d).run({ op: "info" }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DirectorError);
      expect((err as Error).message).toBe(`ipvs-helper on ${target()} did not start: its start script gave no answer within 3 s (operationTimeoutSeconds).`);
    } finally {
      await lab.exec("rm -f /usr/local/bin/sudo");
      await killByCmdline("sleep\\ 3600", "KILL");
    }
    expect((await directorOps(d).run({ op: "info" })).info.version).toMatch(/^\d+\.\d+\.\d+$/);
  });
});

describe("connectTimeoutSeconds behind a jump host", () => {
  it("bounds the bastion's forward to a black-holed director and names the hop", async () => {
    // The bastion's own handshake gets the usual time (the emulated VM is slow); the forward to the director gets 2 s.
    const jumpHost = { host: lab.host, port: lab.port, user: "ops", privateKeyPath: lab.privateKeyPath, hostKey: lab.hostKey, connectTimeoutSeconds: 20 };
    const session = sessionFor(director({ host: BLACKHOLE, port: 22, connectTimeoutSeconds: 2, jumpHost }));
    // Without a bound on forwardOut each attempt waits for the bastion's own TCP timeout (~127 s): past this test's limit.
    const err = await session.exec("true").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DirectorError);
    expect((err as DirectorError).kind).toBe("unreachable");
    expect((err as Error).message).toMatch(
      new RegExp(
        `^cannot reach ops@${BLACKHOLE.replace(/\./g, "\\.")}:22 \\(through ops@127\\.0\\.0\\.1:${lab.port}\\): ` +
          `the jump host gave no answer within 2 s \\(connectTimeoutSeconds\\)\\. Gave up after \\d attempts?`,
      ),
    );
  }, 60_000);
});

describe("a create whose answer is lost after the kernel applied it", () => {
  it("succeeds when re-sent (onExisting \"match\"), and still fails with EXISTS where a different entry exists", async () => {
    const d = director();
    const ops = directorOps(d);
    await ops.getService(tcp("192.0.2.1"));
    // Someone else's entry, with other settings than the create below asks for.
    await lab.exec("ipvsadm -A -t 192.0.2.32:80 -s wlc");
    const before = helperStats(d);
    // The kernel loads a scheduler module itself (request_module → /proc/sys/kernel/modprobe) and waits for it: with a
    // modprobe that hangs, the batch's last create blocks in the kernel after the helper applied the ones before it.
    await lab.exec(`printf '#!/bin/sh\\nexec sleep 3600\\n' > /tmp/hung-modprobe && chmod 755 /tmp/hung-modprobe && echo /tmp/hung-modprobe > /proc/sys/kernel/modprobe`);
    let created: Promise<unknown>, other: Promise<unknown>, slow: Promise<unknown>;
    try {
      created = ops.ensureService({ ...tcp("192.0.2.31"), scheduler: "rr" }, "fail").catch((e: unknown) => e);
      other = ops.ensureService({ ...tcp("192.0.2.32"), scheduler: "rr" }, "fail").catch((e: unknown) => e);
      slow = ops.ensureService({ ...tcp("192.0.2.33"), scheduler: "lblcr" }, "fail").catch((e: unknown) => e);
      // /proc/net/ip_vs, not ipvsadm: the stuck create holds the IPVS mutex that ipvsadm would wait for.
      await vi.waitFor(
        async () => {
          const state = await lab.exec(`cat /proc/net/ip_vs; for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done`);
          expect(state.stdout).toContain("TCP  C000021F:0050 rr"); // 192.0.2.31:80
          expect(state.stdout).toMatch(/^sleep 3600 $/m);
        },
        { timeout: 30_000, interval: 200 },
      );
      expect(helperStats(d).batches).toBe(before.batches + 1);
    } finally {
      await lab.exec("echo /sbin/modprobe > /proc/sys/kernel/modprobe");
    }
    // The helper dies with the batch applied up to its last op: the connection loses every answer.
    await killByCmdline(HELPER_SERVE, "KILL");
    await killByCmdline("sleep\\ 3600", "KILL");

    // What the provider's create gets: success (so the entry is recorded in state), not "was not created by this stack".
    expect(await created).toMatchObject({ changed: false, created: false, service: { address: "192.0.2.31", scheduler: "rr" } });
    const err = (await other) as HelperError;
    expect(err).toBeInstanceOf(HelperError);
    expect(err.code).toBe("EXISTS");
    expect(err.message).toContain("-s wlc");
    expect(await slow).toMatchObject({ changed: true, created: true, service: { scheduler: "lblcr" } });
    expect(helperStats(d)).toMatchObject({ starts: before.starts + 1, resent: before.resent + 3 });
  });
});
