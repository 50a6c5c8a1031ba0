// The engine's floor for the benchmark: the same N+1 resources and dependency shape as test/bench/fixture (one
// "service" whose outputs every "real server" takes as an input), as dynamic resources whose provider does nothing.
// One provider object for all of them, so Pulumi serializes it once. Used by test/bench/run.ts; compare its rounds
// with the fixture's to see what pulumi-ipvs costs beyond the engine itself.
// With config `inputs` "ipvs" each resource also takes the inputs a pulumi-ipvs resource of the fixture stores (the
// directors with their secret key, owner, URN, flags; the real servers' service reference, secret as a whole in
// outputs): the engine's own cost of checkpointing those properties, which the provider cannot avoid.
import * as pulumi from "@pulumi/pulumi";

const cfg = new pulumi.Config();
const count = cfg.getNumber("count") ?? 200;
const vip = cfg.require("vip");

const noop: pulumi.dynamic.ResourceProvider = {
  async check(_olds, news) {
    return { inputs: news };
  },
  async diff(_id, olds, news) {
    const { __provider: _a, ...o } = olds as Record<string, unknown>;
    const { __provider: _b, ...n } = news as Record<string, unknown>;
    return { changes: JSON.stringify(o) !== JSON.stringify(n) };
  },
  async create(inputs) {
    return { id: `${inputs.address}:${inputs.port}`, outs: inputs };
  },
  async delete() {},
};

class Noop extends pulumi.dynamic.Resource {
  declare public readonly address: pulumi.Output<string>;
  declare public readonly port: pulumi.Output<number>;
  declare public readonly directors: pulumi.Output<unknown>;
  constructor(name: string, props: Record<string, pulumi.Input<unknown>>, secretOutputs: string[] = []) {
    super(noop, name, { address: undefined, port: undefined, directors: undefined, ...props }, { additionalSecretOutputs: secretOutputs }, "bench", "Noop");
  }
}

// What a pulumi-ipvs resource of the fixture stores beyond its own fields (see src/virtualService.ts, realServer.ts).
const ipvsInputs = cfg.get("inputs") === "ipvs";
const owner = `organization/${pulumi.getProject()}/${pulumi.getStack()}`;
const urn = (name: string) => `urn:pulumi:${pulumi.getStack()}::${pulumi.getProject()}::pulumi-nodejs:dynamic/bench:Noop::${name}`;
const directors = () => [{ host: cfg.require("host"), port: cfg.requireNumber("port"), user: cfg.require("user"), hostKey: cfg.require("hostKey"), privateKey: cfg.requireSecret("privateKey") }];
const common = (name: string) => (ipvsInputs ? { adopt: false, takeover: false, owner, resourceUrn: urn(name) } : {});

const svc = new Noop(
  "bench",
  {
    protocol: "tcp", address: vip, port: 80, scheduler: "wrr",
    ...(ipvsInputs ? { directors: pulumi.secret(directors()), family: "ipv4", schedulerFlags: [], onePacket: false, deleteForeignRealServers: false } : {}),
    ...common("bench"),
  },
  ipvsInputs ? ["directors"] : [],
);
for (let i = 0; i < count; i++) {
  new Noop(
    `rs-${i + 1}`,
    {
      service: ipvsInputs
        ? { directors: svc.directors, family: "ipv4", protocol: "tcp", address: svc.address, port: svc.port }
        : { address: svc.address, port: svc.port },
      address: `10.20.${Math.floor(i / 250)}.${(i % 250) + 1}`,
      port: 8080,
      forwarding: "nat",
      weight: 1 + (i % 5),
      ...(ipvsInputs ? { upperThreshold: 0, lowerThreshold: 0 } : {}),
      ...common(`rs-${i + 1}`),
    },
    ipvsInputs ? ["service"] : [],
  );
}

export const service = svc.id;
