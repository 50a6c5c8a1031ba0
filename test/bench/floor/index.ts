// The engine's floor for the benchmark: the same N+1 resources and dependency shape as test/bench/fixture (one
// "service" whose outputs every "real server" takes as an input), as dynamic resources whose provider does nothing.
// One provider object for all of them, so Pulumi serializes it once. Used by test/bench/run.ts; compare its rounds
// with the fixture's to see what pulumi-ipvs costs beyond the engine itself.
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
  constructor(name: string, props: Record<string, pulumi.Input<unknown>>) {
    super(noop, name, { address: undefined, port: undefined, ...props }, {}, "bench", "Noop");
  }
}

const svc = new Noop("bench", { protocol: "tcp", address: vip, port: 80, scheduler: "wrr" });
for (let i = 0; i < count; i++) {
  new Noop(`rs-${i + 1}`, {
    service: { address: svc.address, port: svc.port },
    address: `10.20.${Math.floor(i / 250)}.${(i % 250) + 1}`,
    port: 8080,
    forwarding: "nat",
    weight: 1 + (i % 5),
  });
}

export const service = svc.id;
