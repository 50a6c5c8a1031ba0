// src/secrets.ts: which parts of a directors input become secret, and that the SDK really sends them as secrets.
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import type { DirectorArgs } from "../../src/director";
import { secretDirectors, secretHop } from "../../src/secrets";

const SIG = pulumi.runtime.specialSigKey;
const SECRET = pulumi.runtime.specialSecretSig;
const secretValue = (value: unknown) => ({ [SIG]: SECRET, value });

/** What @pulumi/pulumi puts on the wire for this input of a resource (rpc.js serializeProperty). */
const wire = (v: unknown) => pulumi.runtime.serializeProperty("test", v, new Set());

async function isSecret(v: unknown): Promise<boolean> {
  return pulumi.Output.isInstance(v) && (await (v as unknown as { isSecret: Promise<boolean> }).isSecret);
}

const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";

beforeAll(async () => {
  // Mocks make the SDK's store say the engine supports secrets, as the real engine does; nothing is registered here.
  await pulumi.runtime.setMocks({
    newResource: (args) => ({ id: `${args.name}-id`, state: args.inputs }),
    call: () => ({}),
  });
});

describe("secretHop", () => {
  it("makes only the credential fields secret, at every jumpHost depth, keeping the values", async () => {
    const hop: DirectorArgs = {
      host: "10.0.0.1",
      port: 22,
      user: "ops",
      privateKey: KEY,
      privateKeyPassphrase: "pass",
      hostKey: "ssh-ed25519 AAAA",
      sudo: true,
      jumpHost: { host: "bastion", password: "pw", jumpHost: { host: "outer", privateKey: KEY } },
    };
    expect(await wire(secretHop(hop))).toEqual({
      host: "10.0.0.1",
      port: 22,
      user: "ops",
      privateKey: secretValue(KEY),
      privateKeyPassphrase: secretValue("pass"),
      hostKey: "ssh-ed25519 AAAA",
      sudo: true,
      jumpHost: { host: "bastion", password: secretValue("pw"), jumpHost: { host: "outer", privateKey: secretValue(KEY) } },
    });
  });

  it("leaves absent credentials absent and does not touch the caller's object", async () => {
    const hop: DirectorArgs = { host: "h", agent: true, password: undefined };
    const out = secretHop(hop) as DirectorArgs;
    expect(await wire(out)).toEqual({ host: "h", agent: true });
    expect(hop).toEqual({ host: "h", agent: true, password: undefined });
  });

  it("keeps a credential that is already a secret Output secret, and makes a plain Output one secret", async () => {
    const out = secretHop({ host: "h", privateKey: pulumi.secret(KEY), password: pulumi.output("pw") }) as DirectorArgs;
    expect(await wire(out)).toEqual({ host: "h", privateKey: secretValue(KEY), password: secretValue("pw") });
  });

  it("makes a hop or jump host it cannot look inside (an Output or a Promise) secret as a whole", async () => {
    const whole = secretHop(pulumi.output({ host: "h", password: "pw" }));
    expect(await isSecret(whole)).toBe(true);
    expect(await wire(whole)).toEqual(secretValue({ host: "h", password: "pw" }));
    const nested = secretHop({ host: "h", jumpHost: Promise.resolve({ host: "b", password: "pw" }) });
    expect(await wire(nested)).toEqual({ host: "h", jumpHost: secretValue({ host: "b", password: "pw" }) });
  });
});

describe("secretDirectors", () => {
  it("maps a list hop by hop, so host and port stay readable", async () => {
    const list = secretDirectors([
      { host: "a", privateKey: KEY },
      pulumi.output({ host: "b", password: "pw" }),
    ]);
    expect(await wire(list)).toEqual([
      { host: "a", privateKey: secretValue(KEY) },
      secretValue({ host: "b", password: "pw" }),
    ]);
  });

  it("makes a list given as an Output or a Promise secret as a whole", async () => {
    for (const opaque of [pulumi.output([{ host: "a", password: "pw" }]), Promise.resolve([{ host: "a", password: "pw" }])]) {
      const out = secretDirectors(opaque);
      expect(await isSecret(out)).toBe(true);
      expect(await wire(out)).toEqual(secretValue([{ host: "a", password: "pw" }]));
    }
  });
});
