// Issue 8 item 3 through the real pulumi CLI: a program that passes its SSH key (read with fs.readFileSync) and
// passwords as PLAIN strings, on a director, on a jump host and in get()'s state, still gets them into state only
// encrypted: inputs and outputs, VirtualService and RealServer, managed and read resources, in `pulumi stack export`
// and in every file the backend wrote. The provider still receives the plain values (it logs in with the key), and
// a preview afterwards sees no change.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDirector, type LabDirector } from "../lab/director";
import { ipvsadmSave } from "../lab/ipvsadm";
import { E2EStack, repoRoot, type OperationResult } from "./harness";

const VIP = "192.0.2.20";
const VS_TYPE = "pulumi-nodejs:dynamic/ipvs:VirtualService";
const RS_TYPE = "pulumi-nodejs:dynamic/ipvs:RealServer";
// The fixture's literals. Distinctive, so finding one can only be a leak; the jump host's is 3 characters.
const DIRECTOR_PASSWORD = "pw-director-Vq7Lr2Xs9Kd";
const JUMP_PASSWORD = "k7Q";

/** Ops per resource name from the engine's resourcePreEvents, e.g. { web: "create", "read-web": "read" }. */
function opsOf(res: OperationResult): Record<string, string> {
  const ops: Record<string, string> = {};
  for (const e of res.events) {
    const md = (e.resourcePreEvent as { metadata?: { urn: string; op: string; type: string } } | undefined)?.metadata;
    if (md?.type.startsWith("pulumi-nodejs:dynamic/ipvs:")) ops[md.urn.split("::").pop()!] = md.op;
  }
  return ops;
}

/** Every file under dir (the backend's stack file, its backups and history), as text. */
function filesUnder(dir: string): Array<{ file: string; text: string }> {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name))
    .map((file) => ({ file, text: readFileSync(file, "utf8") }));
}

describe("plain credentials in a program reach state only as secrets", () => {
  let d: LabDirector;
  let stack: E2EStack;
  let keyLines: string[];

  /** Fails naming `where` if any line of the key, the key header or either password occurs in text. */
  const expectNoCredentials = (text: string, where: string) => {
    for (const line of keyLines) expect(text.includes(line), `${where} holds a line of the private key`).toBe(false);
    expect(text, where).not.toContain("PRIVATE KEY");
    expect(text, where).not.toContain(DIRECTOR_PASSWORD);
    // Short: only as a JSON string value, so random matches inside ciphertext or ids do not count.
    expect(text, where).not.toContain(JSON.stringify(JUMP_PASSWORD));
  };

  beforeAll(async () => {
    d = await startDirector();
    keyLines = readFileSync(d.privateKeyPath, "utf8")
      .split("\n")
      .filter((l) => l && !l.startsWith("-----"));
    expect(keyLines.join("").length).toBeGreaterThan(40);
    stack = await E2EStack.create({
      program: path.join(repoRoot, "test", "e2e", "fixtures", "plain-credentials"),
      // No secret config at all: the program reads the key file itself and has the passwords as literals.
      config: {
        host: d.host,
        port: String(d.port),
        user: d.user,
        keyPath: d.privateKeyPath,
        hostKey: d.hostKey,
        vip: VIP,
      },
    });
  });

  afterAll(async () => {
    await stack?.dispose();
    await d?.stop();
  });

  it("up creates both services (direct and through the jump host) and reads them back with get()", async () => {
    const res = await stack.up();
    expect(opsOf(res)).toEqual({
      web: "create",
      app: "create",
      "via-jump": "create",
      "via-jump-app": "create",
      "read-web": "read",
      "read-app": "read",
    });
    // The provider got usable plain values: it logged in with the key, directly and through the bastion.
    const save = await ipvsadmSave(d);
    expect(save).toContain(`-A -t ${VIP}:80 -s rr`);
    expect(save).toContain(`-a -t ${VIP}:80 -r 10.10.0.11:80 -m -w 2`);
    expect(save).toContain(`-A -t ${VIP}:81 -s wlc`);
    expect(save).toContain(`-a -t ${VIP}:81 -r 10.10.0.12:81 -m -w 1`);
    expect(await stack.outputs()).toMatchObject({ serviceId: `tcp/${VIP}:80@${d.host}:${d.port}`, readScheduler: "rr", readWeight: 2 });
    // Neither the CLI's diff output nor the engine's events show a credential.
    expectNoCredentials(res.stdout + res.stderr, "up's output");
    // Debug diagnostics excepted: @pulumi/pulumi logs each RegisterResource/ReadResource response at debug level,
    // resolved secret outputs included, whatever the inputs were (only shown with --debug, or in an event log).
    const events = res.events.filter((e) => (e.diagnosticEvent as { severity?: string } | undefined)?.severity !== "debug");
    expectNoCredentials(JSON.stringify(events), "up's engine events");
  });

  it("stack export holds no credential in clear; every credential-bearing property is encrypted", async () => {
    const { text, deployment } = await stack.exportState();
    expectNoCredentials(text, "stack export");
    const resources = deployment.resources!.filter((r) => r.type === VS_TYPE || r.type === RS_TYPE);
    expect(resources.map((r) => r.urn.split("::").pop()).sort()).toEqual(["app", "read-app", "read-web", "via-jump", "via-jump-app", "web"]);
    const byName = new Map(resources.map((r) => [r.urn.split("::").pop()!, r]));
    const inputsOf = (name: string) => byName.get(name)!.inputs as Record<string, any>;
    const outputsOf = (name: string) => byName.get(name)!.outputs as Record<string, any>;
    // Managed resources: the engine encrypts a whole list once any element holds a secret (annotateSecrets on the
    // checked inputs), so `directors` is one ciphertext; in a RealServer it sits inside `service`.
    for (const name of ["web", "via-jump"]) expect(inputsOf(name).directors, name).toHaveProperty("ciphertext");
    for (const name of ["app", "via-jump-app"]) expect(inputsOf(name).service.directors, name).toHaveProperty("ciphertext");
    // get(): the inputs are stored as the program sent them: only the credential is encrypted, the host stays readable.
    for (const directors of [inputsOf("read-web").directors, inputsOf("read-app").service.directors]) {
      expect(directors[0].privateKey).toHaveProperty("ciphertext");
      expect(directors[0].host).toBe(d.host);
    }
    // Outputs: additionalSecretOutputs.
    for (const name of ["web", "via-jump", "read-web"]) expect(outputsOf(name).directors, name).toHaveProperty("ciphertext");
    for (const name of ["app", "via-jump-app", "read-app"]) expect(outputsOf(name).service, name).toHaveProperty("ciphertext");
  });

  it("no file the backend wrote (state, backups, history) holds a credential in clear", () => {
    const files = filesUnder(path.join(stack.workDir, "state"));
    expect(files.some((f) => f.file.endsWith(path.join("stacks", "plain-credentials", "e2e.json")))).toBe(true);
    for (const { file, text } of files) expectNoCredentials(text, file);
  });

  it("a preview afterwards sees no change", async () => {
    const res = await stack.preview();
    expect(opsOf(res)).toEqual({
      web: "same",
      app: "same",
      "via-jump": "same",
      "via-jump-app": "same",
      "read-web": "read",
      "read-app": "read",
    });
    expectNoCredentials(res.stdout + res.stderr, "preview's output");
  });

  it("destroy (the provider gets plain credentials from encrypted state) removes every entry the stack created", async () => {
    await stack.destroy();
    expect(await ipvsadmSave(d)).not.toContain(VIP);
  });
});
