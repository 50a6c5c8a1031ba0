// The director session against a real lab director: OpenSSH in a VM, real sudo, real host keys.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Director } from "../../provider/director";
import { closeAllSessions, DirectorError, sessionFor } from "../../provider/session";
import { startDirector, type LabDirector } from "../lab/director";
import { sessionDirector } from "./providerEngine";

let lab: LabDirector;
let scratch: string;
/** A key the director has never seen, and its text (a secret that must never surface). */
let strangerKey: string;

beforeAll(async () => {
  lab = await startDirector();
  scratch = mkdtempSync(path.join(tmpdir(), "session-test-"));
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(scratch, "stranger")]);
  strangerKey = readFileSync(path.join(scratch, "stranger"), "utf8");
});

afterAll(async () => {
  closeAllSessions();
  await lab?.stop();
});

/** ops with sudo, key by path, pinned host key: the usual director. Extra fields make a distinct pooled session. */
const director = (extra: Partial<Director> = {}) => sessionDirector(lab, extra);

/** Kills the sshd processes serving ops's sessions (the VM has no pkill; sshd retitles itself "sshd: ops…"). */
const KILL_OPS_SESSIONS = `for p in /proc/[0-9]*; do case "$(tr '\\0' ' ' < $p/cmdline 2>/dev/null)" in "sshd: ops"*) kill \${p#/proc/};; esac; done`;

const hostKeyBlob = () => lab.hostKey.split(" ").slice(0, 2).join(" ");
const where = () => `127.0.0.1:${lab.port}`;

/** Runs `touch marker` through a session that must fail; proves the command never ran. */
async function expectRefusedBeforeRunning(d: Director, marker: string): Promise<DirectorError> {
  const session = sessionFor(d);
  const err = await session.exec(`touch /tmp/${marker}`).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DirectorError);
  const found = await lab.exec(`test -e /tmp/${marker} && echo present || echo absent`);
  expect(found.stdout.trim()).toBe("absent");
  return err as DirectorError;
}

describe("connecting", () => {
  it("runs commands as root through sudo -n when logged in as ops, sharing one connection", async () => {
    const session = sessionFor(director());
    const results = await Promise.all([session.exec("id -u"), session.exec("id -u"), session.exec("whoami")]);
    expect(results.map((r) => r.stdout.toString().trim())).toEqual(["0", "0", "root"]);
    await session.exec("true");
    expect(session.stats.dialAttempts).toBe(1);
    expect(session.stats.connections).toBe(1);
    expect(sessionFor(director())).toBe(session);
  });

  it("runs as root without sudo when logged in as root", async () => {
    const session = sessionFor(director({ user: "root", sudo: false }));
    expect((await session.exec("id -u")).stdout.toString().trim()).toBe("0");
  });

  it("authenticates with private key text as well as a path", async () => {
    const session = sessionFor(director({ privateKeyPath: undefined, privateKey: readFileSync(lab.privateKeyPath, "utf8") }));
    expect((await session.exec("echo ok")).stdout.toString().trim()).toBe("ok");
  });

  it("reaches the director through a jump host (the VM as its own bastion)", async () => {
    const jumpHost = { host: lab.host, port: lab.port, user: "ops", privateKeyPath: lab.privateKeyPath, hostKey: lab.hostKey, connectTimeoutSeconds: 20 };
    // As root without sudo, so SSH_CONNECTION survives: a forwarded connection arrives from the guest's own loopback
    // (a direct one arrives from qemu's 10.0.2.2).
    const asRoot = sessionFor(director({ host: "127.0.0.1", port: 22, user: "root", sudo: false, jumpHost }));
    expect((await asRoot.exec("echo $SSH_CONNECTION")).stdout.toString()).toMatch(/^127\.0\.0\.1 \d+ 127\.0\.0\.1 22\n$/);
    const viaSudo = sessionFor(director({ host: "127.0.0.1", port: 22, jumpHost }));
    expect((await viaSudo.exec("id -u")).stdout.toString().trim()).toBe("0");
    expect(viaSudo.target).toBe("ops@127.0.0.1:22");
  });

  it("names the bastion when the jump host refuses the key", async () => {
    const d = director({
      host: "127.0.0.1",
      port: 22,
      jumpHost: { host: lab.host, port: lab.port, user: "ops", privateKey: strangerKey, hostKey: lab.hostKey, connectTimeoutSeconds: 20 },
    });
    const err = await expectRefusedBeforeRunning(d, "jump-refused");
    expect(err.kind).toBe("auth");
    expect(err.message).toContain(`ops@${where()} (jump host for ops@127.0.0.1:22)`);
  });
});

describe("credentials", () => {
  it("authenticates through an ssh-agent socket", async () => {
    const sock = path.join(scratch, "agent.sock");
    const out = execFileSync("ssh-agent", ["-s", "-a", sock]).toString();
    const agentPid = Number(/SSH_AGENT_PID=(\d+)/.exec(out)![1]);
    try {
      execFileSync("ssh-add", ["-q", lab.privateKeyPath], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: "ignore" });
      const session = sessionFor(director({ privateKeyPath: undefined, agent: sock }));
      expect((await session.exec("id -u")).stdout.toString().trim()).toBe("0");
      session.close();
    } finally {
      process.kill(agentPid);
    }
  });

  it("decrypts a passphrase-protected key; a wrong passphrase fails at once without echoing it", async () => {
    const encrypted = path.join(scratch, "encrypted");
    writeFileSync(encrypted, readFileSync(lab.privateKeyPath), { mode: 0o600 });
    execFileSync("ssh-keygen", ["-q", "-p", "-P", "", "-N", "right-phrase-4471", "-f", encrypted]);
    const good = sessionFor(director({ privateKeyPath: encrypted, privateKeyPassphrase: "right-phrase-4471" }));
    expect((await good.exec("echo ok")).stdout.toString().trim()).toBe("ok");

    const wrong = director({ privateKeyPath: encrypted, privateKeyPassphrase: "wrong-phrase-9902" });
    const err = await expectRefusedBeforeRunning(wrong, "wrong-passphrase");
    expect(err.kind).toBe("config");
    expect(err.message).toContain(`ops@${where()}`);
    expect(sessionFor(wrong).stats.dialAttempts).toBe(1);
    expect(`${err.message}\n${err.stack}`).not.toContain("wrong-phrase-9902");
  });
});

describe("host key policy", () => {
  it("accepts knownHosts text with a [127.0.0.1]:PORT entry", async () => {
    const session = sessionFor(director({ hostKey: undefined, knownHosts: `# lab\n[127.0.0.1]:${lab.port} ${hostKeyBlob()}\n` }));
    expect((await session.exec("echo ok")).stdout.toString().trim()).toBe("ok");
  });

  it("accepts a known_hosts file with a hashed entry", async () => {
    const file = path.join(scratch, "known_hosts");
    writeFileSync(file, `[127.0.0.1]:${lab.port} ${hostKeyBlob()}\n`);
    execFileSync("ssh-keygen", ["-q", "-H", "-f", file]);
    expect(readFileSync(file, "utf8")).toMatch(/^\|1\|/);
    const session = sessionFor(director({ hostKey: undefined, knownHosts: file }));
    expect((await session.exec("echo ok")).stdout.toString().trim()).toBe("ok");
  });

  it("accepts any key with insecureIgnoreHostKey", async () => {
    const session = sessionFor(director({ hostKey: undefined, insecureIgnoreHostKey: true }));
    expect((await session.exec("echo ok")).stdout.toString().trim()).toBe("ok");
  });

  it("refuses a wrong pinned key before authenticating, naming both fingerprints, without retrying", async () => {
    const other = readFileSync(path.join(scratch, "stranger.pub"), "utf8");
    const d = director({ hostKey: other });
    const err = await expectRefusedBeforeRunning(d, "wrong-hostkey");
    expect(err.kind).toBe("hostKey");
    const presented = execFileSync("ssh-keygen", ["-lf", "-"], { input: lab.hostKey }).toString().split(" ")[1]!;
    const expected = execFileSync("ssh-keygen", ["-lf", "-"], { input: other }).toString().split(" ")[1]!;
    expect(err.message).toContain(`ops@${where()}`);
    expect(err.message).toContain(presented);
    expect(err.message).toContain(expected);
    expect(sessionFor(d).stats.dialAttempts).toBe(1);
  });

  it("refuses a knownHosts that has no entry for this host:port, showing the line to add", async () => {
    const err = await expectRefusedBeforeRunning(director({ hostKey: undefined, knownHosts: `127.0.0.1 ${hostKeyBlob()}` }), "kh-miss");
    expect(err.kind).toBe("hostKey");
    expect(err.message).toContain(`[127.0.0.1]:${lab.port} ${hostKeyBlob()}`);
  });

  it("refuses when no host key policy is given", async () => {
    const err = await expectRefusedBeforeRunning(director({ hostKey: undefined }), "no-policy");
    expect(err.kind).toBe("hostKey");
    expect(err.message).toMatch(/no host key policy/);
    expect(err.message).toContain(`hostKey: "${hostKeyBlob()}"`);
  });
});

describe("failing fast, and never leaking secrets", () => {
  it("a wrong private key is an authentication error after exactly one attempt, without the key in it", async () => {
    const d = director({ privateKeyPath: undefined, privateKey: strangerKey });
    const err = await expectRefusedBeforeRunning(d, "wrong-key");
    expect(err.kind).toBe("auth");
    expect(err.message).toContain(`ops@${where()}`);
    expect(sessionFor(d).stats.dialAttempts).toBe(1);
    const everything = `${err.message}\n${err.stack}\n${JSON.stringify(err)}\n${String(err)}`;
    for (const line of strangerKey.split("\n").filter((l) => l.length > 8 && !l.startsWith("-----"))) expect(everything).not.toContain(line);
  });

  it("a refused password is an authentication error without the password in it", async () => {
    const password = "pw-Hz8q-secret-9931";
    const d = director({ privateKeyPath: undefined, password });
    const err = await expectRefusedBeforeRunning(d, "wrong-password");
    expect(err.kind).toBe("auth");
    expect(sessionFor(d).stats.dialAttempts).toBe(1);
    expect(`${err.message}\n${err.stack}\n${JSON.stringify(err)}`).not.toContain(password);
  });

  it("a sudo that wants a password fails with a clear message", async () => {
    const err = await expectRefusedBeforeRunning(director({ user: "needpw" }), "needpw");
    expect(err.kind).toBe("sudoPassword");
    expect(err.message).toContain(`sudo on needpw@${where()} requires a password`);
  });
});

describe("recovering from dropped connections", () => {
  it("re-dials after the director drops the connection", async () => {
    const session = sessionFor(director({ connectTimeoutSeconds: 30 }));
    await session.exec("true");
    const before = session.stats.connections;
    await lab.exec(KILL_OPS_SESSIONS);
    expect((await session.exec("echo back")).stdout.toString().trim()).toBe("back");
    expect(session.stats.connections).toBe(before + 1);
  });

  it("survives an sshd restart in the middle of a command, retrying while sshd is down", async () => {
    const session = sessionFor(director({ connectTimeoutSeconds: 40 }));
    await session.exec("true");
    const before = { ...session.stats };
    // Detached: once the command below is running, kills sshd (listener and sessions) and restarts it 3 s later. The
    // command waits for that kill (no timing assumed), and its re-run after the re-dial finds the kill done and answers.
    await lab.exec("rm -f /tmp/sshd-cmd-started /tmp/sshd-killed");
    const script = `until [ -e /tmp/sshd-cmd-started ]; do sleep 0.1; done; touch /tmp/sshd-killed; kill $(cat /run/sshd.pid); ${KILL_OPS_SESSIONS}; sleep 3; /usr/sbin/sshd -E /var/log/sshd.log\n`;
    await lab.exec("cat > /tmp/restart-sshd", { stdin: script });
    await lab.exec("setsid sh /tmp/restart-sshd </dev/null >/dev/null 2>&1 &");
    const result = await session.exec("if [ -e /tmp/sshd-killed ]; then echo done; else touch /tmp/sshd-cmd-started; sleep 120; fi");
    expect(result.stdout.toString().trim()).toBe("done");
    expect(session.stats.connections).toBe(before.connections + 1);
    expect(session.stats.dialAttempts).toBeGreaterThan(before.dialAttempts);
  });
});

describe("process lifetime", () => {
  it("lets a process that used a session exit on its own (idle connections are closed)", async () => {
    const script = path.join(scratch, "use-and-leave.ts");
    writeFileSync(
      script,
      `import { sessionFor } from ${JSON.stringify(path.resolve("provider/session"))};
       sessionFor(JSON.parse(process.env.DIRECTOR!)).exec("echo used").then((r) => console.log(r.stdout.toString().trim()));\n`,
    );
    // If a pooled connection stayed open, this child would never exit and the test would time out.
    const child = spawn(path.resolve("node_modules/.bin/tsx"), [script], { env: { ...process.env, DIRECTOR: JSON.stringify(director()) } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    expect(code, stderr).toBe(0);
    expect(stdout.trim()).toBe("used");
  });
});
