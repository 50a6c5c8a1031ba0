// Installing and starting the helper on a hostile or unusual director: planted install trees, unsafe path components,
// a chatty login shell, no sha256sum, an interrupted upload, a deleted or corrupted binary. Each case leaves the VM as
// it found it (afterEach).
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Director } from "../../provider/director";
import { directorOps, helperStats, installPath, locateHelper } from "../../provider/helperClient";
import { INSTALL_ROOT } from "../../provider/helperClient/binaries";
import { installScript } from "../../provider/helperClient/scripts";
import { closeAllSessions, DirectorError, sessionFor } from "../../provider/session";
import { startDirector, type LabDirector } from "../lab/director";
import { sessionDirector } from "./providerEngine";

let lab: LabDirector;

beforeAll(async () => {
  lab = await startDirector();
});

afterAll(async () => {
  closeAllSessions();
  await lab?.stop();
});

const bins = () => locateHelper();
const file = () => installPath(bins(), "amd64");
const dir = () => path.posix.dirname(file());

// Every case gets its own pooled session (the pool keys on the settings), so helperStats counts that case only.
let n = 0;
const director = (): Director => sessionDirector(lab, { connectTimeoutSeconds: 30 + ++n });

const info = (d: Director) => directorOps(d).run({ op: "info" });
const failure = (d: Director) => info(d).then(() => undefined, (e: unknown) => e);
const stat = async (...paths: string[]) => (await lab.exec(`stat -c '%U:%G %a' ${paths.join(" ")}`)).stdout.trim();
/** Helper processes running from anywhere but the real install path (a root helper from a planted tree). */
const strayHelpers = async () =>
  (await lab.exec(`for p in /proc/[0-9]*; do e=$(readlink $p/exe 2>/dev/null) || continue; case $e in */ipvs-helper*) [ "$e" = ${file()} ] || echo $e;; esac; done`)).stdout.trim();

afterEach(async () => {
  closeAllSessions();
  await lab.exec(
    [
      `rm -rf ${INSTALL_ROOT} /home/ops/planted /home/ops/.bashrc /usr/local/sbin/busybox /usr/local/sbin/openssl /tmp/planted-ran`,
      "chmod 755 /usr/local/lib /etc/sudoers.d 2>/dev/null || true",
      "[ -e /usr/bin/sha256sum ] || ln -s /bin/busybox /usr/bin/sha256sum",
      "pkill -u ops -x yes || true",
    ].join("; "),
  );
});

describe("a planted or unsafe install path is refused, never repaired", () => {
  it("refuses an install root owned by ops with a symlink to an ops-owned directory, and touches neither", async () => {
    // ops owns the install root and points the version directory at its own tree, holding a fake helper.
    await lab.exec(
      [
        `mkdir -p /usr/local/lib ${INSTALL_ROOT} /home/ops/planted`,
        `printf '#!/bin/sh\\nid -u > /tmp/planted-ran\\n' > /home/ops/planted/ipvs-helper`,
        "chmod 700 /home/ops/planted; chmod 755 /home/ops/planted/ipvs-helper",
        `ln -s /home/ops/planted ${dir()}`,
        `chown -hR ops:ops ${INSTALL_ROOT} /home/ops/planted`,
      ].join(" && "),
    );
    const before = await lab.exec("ls -la /home/ops/planted; sha256sum < /home/ops/planted/ipvs-helper");
    const d = director();
    const err = await failure(d);
    expect(err).toBeInstanceOf(DirectorError);
    expect((err as Error).message).toContain(`on ops@127.0.0.1:${lab.port}`);
    expect((err as Error).message).toContain(
      `${INSTALL_ROOT} is owned by uid 1000, not root: remove it (pulumi-ipvs recreates it) or \`chown root:root\` it and \`chmod 755\` it, then retry`,
    );
    expect(helperStats(d)).toMatchObject({ uploads: 0, starts: 0 });
    expect(await stat(INSTALL_ROOT, "/home/ops/planted")).toBe("ops:ops 755\nops:ops 700");
    expect((await lab.exec("ls -la /home/ops/planted; sha256sum < /home/ops/planted/ipvs-helper")).stdout).toBe(before.stdout);
    expect((await lab.exec("[ ! -e /tmp/planted-ran ]", { check: false })).code).toBe(0);
    expect(await strayHelpers()).toBe("");
  });

  it("refuses a root-owned install root whose version directory is a symlink to /etc/sudoers.d, and leaves that alone", async () => {
    await lab.exec(`mkdir -p ${INSTALL_ROOT} && chmod 750 /etc/sudoers.d && ln -s /etc/sudoers.d ${dir()}`);
    const before = (await lab.exec("ls -la /etc/sudoers.d")).stdout;
    const err = await failure(director());
    expect(err).toBeInstanceOf(DirectorError);
    expect((err as Error).message).toContain(`on ops@127.0.0.1:${lab.port}`);
    expect((err as Error).message).toContain(`${dir()} is a symbolic link: remove it (pulumi-ipvs recreates it), then retry`);
    expect(await stat("/etc/sudoers.d")).toBe("root:root 750");
    expect((await lab.exec("ls -la /etc/sudoers.d")).stdout).toBe(before);
  });

  it("refuses a group-writable directory above the install root and creates nothing below it", async () => {
    await lab.exec("mkdir -p /usr/local/lib && chmod 775 /usr/local/lib");
    const d = director();
    const err = await failure(d);
    expect(err).toBeInstanceOf(DirectorError);
    expect((err as Error).message).toContain(`on ops@127.0.0.1:${lab.port}`);
    expect((err as Error).message).toContain("/usr/local/lib is writable by group or others (drwxrwxr-x)");
    expect(helperStats(d).uploads).toBe(0);
    expect(await stat("/usr/local/lib")).toBe("root:root 775");
    expect((await lab.exec(`[ ! -e ${INSTALL_ROOT} ]`, { check: false })).code).toBe(0);
  });

  it("creates only the missing directories, root-owned 0755, on a director without /usr/local/lib", async () => {
    await lab.exec("rm -rf /usr/local/lib");
    const d = director();
    await info(d);
    expect(helperStats(d)).toMatchObject({ uploads: 1, starts: 1 });
    expect(await stat("/usr/local/lib", INSTALL_ROOT, dir(), file())).toBe("root:root 755\nroot:root 755\nroot:root 755\nroot:root 755");
  });
});

describe("starting the helper", () => {
  it("runs exactly the verified binary: from its open descriptor, with its arguments", async () => {
    await info(director());
    const ps = (await lab.exec(`for p in /proc/[0-9]*; do [ "$(readlink $p/exe)" = ${file()} ] && tr '\\0' ' ' < $p/cmdline; done; true`)).stdout;
    expect(ps.trim()).toMatch(/^\/proc\/self\/fd\/3 serve\b/);
  });

  it("skips what a chatty login shell prints before the start script answers", async () => {
    await lab.exec("echo 'echo Welcome to the director' > /home/ops/.bashrc && chown ops:ops /home/ops/.bashrc");
    const d = director();
    expect((await info(d)).info.version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(helperStats(d)).toMatchObject({ uploads: 1, starts: 1 });
  });

  it("gives up with a clear error when the login shell prints more than 1000 lines first", async () => {
    await lab.exec(`echo 'i=0; while [ $i -lt 1500 ]; do echo noise $i; i=$((i+1)); done' > /home/ops/.bashrc`);
    const err = await failure(director());
    expect(err).toBeInstanceOf(DirectorError);
    expect((err as Error).message).toMatch(/printed more than 1000 lines .*"noise 0"/);
    expect((err as Error).message).toContain(`ops@127.0.0.1:${lab.port}`);
  });

  it("gives up as soon as the login shell has printed 64 KiB on one line without end, not at the deadline", async () => {
    await lab.exec(`echo 'yes y | tr -d "\\n"' > /home/ops/.bashrc && chown ops:ops /home/ops/.bashrc`);
    expect((await lab.exec("cat /home/ops/.bashrc")).stdout).toBe('yes y | tr -d "\\n"\n');
    // A deadline longer than the test's own timeout: only the bound on what the reader holds can end this in time.
    const d = sessionDirector(lab, { connectTimeoutSeconds: 30 + ++n, operationTimeoutSeconds: 3600 });
    const err = await failure(d);
    expect(err).toBeInstanceOf(DirectorError);
    expect((err as Error).message).toMatch(/printed more than 1000 lines or 64 KiB before the ipvs-helper start script could answer \(starting with "y{200}"\)/);
    expect(helperStats(d)).toMatchObject({ uploads: 0, starts: 0 });
  });
});

describe("hashing without sha256sum", () => {
  // busybox is found on PATH (sudo's secure_path) before /bin; this one refuses the sha256sum applet.
  const REFUSING_BUSYBOX = `mkdir -p /usr/local/sbin && printf '#!/bin/sh\\n[ "$1" = sha256sum ] && exit 127\\nexec /bin/busybox "$@"\\n' > /usr/local/sbin/busybox && chmod 755 /usr/local/sbin/busybox`;

  it("falls back to busybox sha256sum: installs once, later sessions find the binary", async () => {
    await lab.exec("rm /usr/bin/sha256sum && ! command -v sha256sum");
    const d = director();
    await info(d);
    expect(helperStats(d)).toMatchObject({ uploads: 1, starts: 1 });
    closeAllSessions();
    await info(d);
    expect(helperStats(d)).toMatchObject({ uploads: 1, starts: 2 });
  });

  it("falls back to openssl when busybox refuses sha256sum: installs once, later sessions find the binary", async () => {
    await lab.exec(`rm /usr/bin/sha256sum && ${REFUSING_BUSYBOX}`);
    const d = director();
    await info(d);
    expect(helperStats(d)).toMatchObject({ uploads: 1, starts: 1 });
    closeAllSessions();
    await info(d);
    expect(helperStats(d)).toMatchObject({ uploads: 1, starts: 2 });
  });

  it("with no SHA-256 tool at all, says which to install, once, without uploading", async () => {
    // The lab's openssl is shadowed the same way, by one that fails.
    await lab.exec(
      `rm /usr/bin/sha256sum && ${REFUSING_BUSYBOX} && printf '#!/bin/sh\\nexit 127\\n' > /usr/local/sbin/openssl && chmod 755 /usr/local/sbin/openssl`,
    );
    const d = director();
    for (let i = 0; i < 2; i++) {
      const err = await failure(d);
      expect(err).toBeInstanceOf(DirectorError);
      expect((err as Error).message).toContain(`ops@127.0.0.1:${lab.port} has no SHA-256 tool`);
      expect((err as Error).message).toContain("install coreutils (sha256sum), busybox or openssl");
    }
    expect(helperStats(d).uploads).toBe(0);
    expect((await lab.exec(`[ ! -e ${INSTALL_ROOT} ]`, { check: false })).code).toBe(0);
  });
});

describe("an interrupted upload", () => {
  it("leaves no .upload.* file when the install is killed mid-stream", async () => {
    const d = director();
    const ch = await sessionFor(d).openChannel(installScript(bins(), "amd64"));
    // Drained, or the channel never reports its close.
    ch.resume();
    ch.stderr.resume();
    const closed = new Promise((resolve) => ch.on("close", resolve));
    const binary = readFileSync(path.join(bins().dir, "ipvs-helper-linux-amd64"));
    ch.write(binary.subarray(0, binary.length >> 1));
    await expect.poll(async () => (await lab.exec(`ls ${dir()}/.upload.* 2>/dev/null; true`)).stdout, { timeout: 30_000 }).toMatch(/\.upload\./);
    // What an interrupted `pulumi up` or a dying sshd session delivers: a signal to the install's process group.
    await lab.exec(
      `for p in /proc/[0-9]*; do for f in $p/fd/*; do case "$(readlink $f)" in */.upload.*) set -- $(cat $p/stat); kill -TERM -- -$5;; esac; done; done 2>/dev/null; true`,
    );
    await closed;
    // The signal alone must do: sudo relays it a second time, which once killed the cleanup (2 of 20 runs) until the
    // handler ignored further signals. The EXIT trap's rm may still be running when the channel closes.
    await expect.poll(async () => (await lab.exec(`ls -A ${dir()}`)).stdout.trim(), { timeout: 30_000 }).toBe("");
  });

  it("leaves no .upload.* file when the channel is closed mid-stream", async () => {
    const d = director();
    const ch = await sessionFor(d).openChannel(installScript(bins(), "amd64"));
    const binary = readFileSync(path.join(bins().dir, "ipvs-helper-linux-amd64"));
    ch.write(binary.subarray(0, binary.length >> 1));
    await expect.poll(async () => (await lab.exec(`ls ${dir()}/.upload.* 2>/dev/null; true`)).stdout, { timeout: 30_000 }).toMatch(/\.upload\./);
    ch.close();
    await expect.poll(async () => (await lab.exec(`ls -A ${dir()}`)).stdout.trim(), { timeout: 30_000 }).toBe("");
  });
});

describe("a damaged binary between two uses", () => {
  // The helper of the first use may still be exiting (ETXTBSY on an in-place write): retry the damage until it lands.
  const damage = (cmd: string) => lab.exec(`i=0; until ${cmd}; do i=$((i+1)); [ $i -lt 50 ] || exit 1; sleep 0.2; done`);

  it("is re-installed when deleted", async () => {
    const d = director();
    await info(d);
    closeAllSessions();
    await damage(`rm ${file()}`);
    await info(d);
    expect(helperStats(d)).toMatchObject({ uploads: 2, starts: 2 });
    expect((await lab.exec(`sha256sum < ${file()}`)).stdout.slice(0, 64)).toBe(bins().sha256.amd64);
  });

  it("is re-installed when corrupted in place", async () => {
    const d = director();
    await info(d);
    closeAllSessions();
    await damage(`printf XXXX | dd of=${file()} bs=1 seek=4096 conv=notrunc 2>/dev/null`);
    expect((await lab.exec(`sha256sum < ${file()}`)).stdout.slice(0, 64)).not.toBe(bins().sha256.amd64);
    await info(d);
    expect(helperStats(d)).toMatchObject({ uploads: 2, starts: 2 });
    expect((await lab.exec(`sha256sum < ${file()}`)).stdout.slice(0, 64)).toBe(bins().sha256.amd64);
  });
});
