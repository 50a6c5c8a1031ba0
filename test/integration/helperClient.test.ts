// The helper client against a real lab director: the real ipvs-helper on a real IPVS kernel, read back with ipvsadm.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { Director } from "../../provider/director";
import { directorOps, helperStats, installPath, locateHelper } from "../../provider/helperClient";
import { HelperError, type ServiceKey } from "../../provider/protocol";
import { closeAllSessions, DirectorError, sessionFor } from "../../provider/session";
import { startDirector, type LabDirector } from "../lab/director";
import { HELPER_SERVE, sessionDirector } from "./providerEngine";
import { ipvsadmSave } from "../lab/ipvsadm";

let lab: LabDirector;

beforeAll(async () => {
  lab = await startDirector();
});

afterAll(async () => {
  closeAllSessions();
  await lab?.stop();
});

const director = (extra: Partial<Director> = {}) => sessionDirector(lab, extra);

/** Signals the director's processes whose command line starts with `prefix`. */
const killByCmdline = (prefix: string, signal?: string) => lab.killByCmdline(`${prefix}*`, signal);

const helperFile = () => installPath(locateHelper(), "amd64");
/** owner:group mode of the install root, the version directory and the binary, plus the binary's inode. */
const installState = async () => {
  const file = helperFile();
  const dir = file.slice(0, file.lastIndexOf("/"));
  return (await lab.exec(`stat -c '%u:%g %a' /usr/local/lib/pulumi-ipvs ${dir} ${file}; stat -c %i ${file}; sha256sum < ${file}`)).stdout;
};

describe("installing the helper", () => {
  it("uploads it once to a root-owned 0755 path, and later sessions find it by sha256 without uploading", async () => {
    await lab.exec("rm -rf /usr/local/lib/pulumi-ipvs");
    const d = director();
    const info = await directorOps(d).run({ op: "info" });
    expect(info.info.version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(helperStats(d)).toMatchObject({ uploads: 1, starts: 1 });

    const first = await installState();
    const [root, dir, file, , sum] = first.split("\n");
    expect([root, dir, file]).toEqual(["0:0 755", "0:0 755", "0:0 755"]);
    expect(sum!.slice(0, 64)).toBe(locateHelper().sha256.amd64);

    closeAllSessions();
    await directorOps(d).run({ op: "info" });
    expect(helperStats(d)).toMatchObject({ uploads: 1, starts: 2 });
    // Another session (root, no sudo) finds the same file too.
    const asRoot = director({ user: "root", sudo: false });
    await directorOps(asRoot).run({ op: "info" });
    expect(helperStats(asRoot)).toMatchObject({ uploads: 0, starts: 1 });
    expect(await installState()).toBe(first);
  });

  it("refuses, without touching it, a binary that another user could have replaced (group/other-writable)", async () => {
    const d = director({ connectTimeoutSeconds: 21 });
    await directorOps(d).run({ op: "info" });
    closeAllSessions();
    await lab.exec(`chmod 0777 ${helperFile()}`);
    try {
      const err = await directorOps(d).run({ op: "info" }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DirectorError);
      expect((err as Error).message).toContain(`refusing to run ipvs-helper as root on ops@127.0.0.1:${lab.port} from ${helperFile()}: ${helperFile()} is writable by group or others`);
      expect(helperStats(d)).toMatchObject({ uploads: 0, starts: 1 });
      expect((await installState()).split("\n")[2]).toBe("0:0 777");
    } finally {
      await lab.exec(`chmod 0755 ${helperFile()}`);
    }
  });

  it("says that sudo wants a password", async () => {
    const err = await directorOps(director({ user: "needpw" })).run({ op: "info" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DirectorError);
    expect((err as DirectorError).kind).toBe("sudoPassword");
    expect((err as Error).message).toContain(`sudo on needpw@127.0.0.1:${lab.port} requires a password`);
  });
});

describe("running operations", () => {
  const svc: ServiceKey = { family: "ipv4", protocol: "tcp", address: "192.0.2.10", port: 80 };

  it("coalesces 200 concurrent ensureDest calls into a few round trips; ipvsadm shows all 200", async () => {
    const d = director();
    const ops = directorOps(d);
    await ops.ensureService({ ...svc, scheduler: "rr" });
    const before = helperStats(d);
    const started = performance.now();
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => ops.ensureDest(svc, { address: `10.1.${i >> 8}.${i & 255}`, port: 8080, forwarding: "nat", weight: 2 })),
    );
    const wallMs = performance.now() - started;
    const after = helperStats(d);
    console.log(`200 ensureDest on one director: ${after.batches - before.batches} round trip(s), ${Math.round(wallMs)} ms`);

    expect(results.every((r) => r.created && r.dest.weight === 2)).toBe(true);
    expect(after.batches - before.batches).toBeLessThanOrEqual(5);
    const saved = await ipvsadmSave(lab);
    const dests = saved.split("\n").filter((l) => l.startsWith("-a -t 192.0.2.10:80 "));
    expect(dests).toHaveLength(200);
    expect(dests).toContain("-a -t 192.0.2.10:80 -r 10.1.0.199:8080 -m -w 2");
  });

  it("reports a refused operation as a HelperError that names the director, without failing its batch mates", async () => {
    const ops = directorOps(director());
    const [exists, fine] = await Promise.allSettled([ops.ensureService(svc, "fail"), ops.getService(svc)]);
    expect(exists.status).toBe("rejected");
    const err = (exists as PromiseRejectedResult).reason as HelperError;
    expect(err).toBeInstanceOf(HelperError);
    expect(err.code).toBe("EXISTS");
    expect(err.director).toBe(`${lab.user}@127.0.0.1:${lab.port}`);
    expect(err.message).toContain(`ipvs-helper on ${lab.user}@127.0.0.1:${lab.port}:`);
    expect(fine.status).toBe("fulfilled");
  });

  it("restarts a helper that was killed between calls", async () => {
    const d = director();
    const ops = directorOps(d);
    await ops.getService(svc);
    const starts = helperStats(d).starts;
    await killByCmdline(HELPER_SERVE);
    expect((await ops.getService(svc))?.scheduler).toBe("rr");
    expect(helperStats(d).starts).toBe(starts + 1);
  });

  it("when the helper dies with a batch in flight, re-sends every op once, a create as onExisting \"match\"", async () => {
    const d = director();
    const ops = directorOps(d);
    await ops.getService(svc);
    const before = helperStats(d);
    // A stopped helper holds the batch unanswered; killing it then loses the batch deterministically.
    await killByCmdline(HELPER_SERVE, "STOP");
    const createOnly: ServiceKey = { family: "ipv4", protocol: "udp", address: "192.0.2.53", port: 53 };
    const read = ops.getService(svc);
    const create = ops.ensureService(createOnly, "fail");
    await vi.waitFor(() => expect(helperStats(d).batches).toBe(before.batches + 1));
    await killByCmdline(HELPER_SERVE, "KILL");
    // sudo stops itself when its command stops; resumed, it sees the command gone and the channel closes.
    await killByCmdline("sudo\\ -n\\ --", "CONT");

    expect((await read)?.scheduler).toBe("rr");
    // Whether or not the lost batch reached the kernel, the create is re-sent in its idempotent form and succeeds.
    expect((await create).service).toMatchObject({ protocol: "udp", address: "192.0.2.53", port: 53 });
    expect(helperStats(d)).toMatchObject({ starts: before.starts + 1, resent: before.resent + 2 });
    expect(await ipvsadmSave(lab)).toContain("-A -u 192.0.2.53:53");
    await ops.deleteService(createOnly);
  });

  it("re-dials and restarts the helper after the connection drops", async () => {
    const d = director();
    const ops = directorOps(d);
    await ops.getService(svc);
    const connections = sessionFor(d).stats.connections;
    await killByCmdline("sshd:\\ ops");
    expect((await ops.getDest(svc, { address: "10.1.0.7", port: 8080 }))?.forwarding).toBe("nat");
    expect(sessionFor(d).stats.connections).toBe(connections + 1);
  });
});
