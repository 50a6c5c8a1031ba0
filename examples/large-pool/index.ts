// A large pool: one TCP virtual service whose real servers are one RealServerPool resource, so a thousand backends
// cost the engine one resource, not a thousand. `count` (config) says how many members; addresses are generated
// from `subnet` (10.20.x.y). Changing one member's weight, or adding and removing members, touches only those.
import * as pulumi from "@pulumi/pulumi";
import * as ipvs from "pulumi-ipvs";

const cfg = new pulumi.Config();

const director: ipvs.DirectorArgs = {
  host: cfg.require("host"),
  port: cfg.getNumber("port") ?? 22,
  user: cfg.get("user") ?? "root",
  privateKey: cfg.getSecret("privateKey"),
  privateKeyPath: cfg.get("privateKeyPath"),
  hostKey: cfg.get("hostKey"),
  knownHosts: cfg.get("knownHosts"),
};

const web = new ipvs.VirtualService("web", {
  directors: [director],
  protocol: "tcp",
  address: cfg.get("vip") ?? "192.0.2.20",
  port: 80,
  scheduler: "wrr",
});

// Members given one by one (`members`: a JSON list of { address, port, weight, forwarding, upperThreshold,
// lowerThreshold, tunnel }), then `count` generated ones (default 200 when no members are given) on `memberPort`,
// all with `generatedWeight`.
const given = cfg.getObject<ipvs.RealServerPoolMemberArgs[]>("members") ?? [];
const count = cfg.getNumber("count") ?? (given.length === 0 ? 200 : 0);
const subnet = cfg.get("subnet") ?? "10.20";
const generated = Array.from({ length: count }, (_, i) => ({
  // 250 per /24: 10.20.0.1 … 10.20.0.250, 10.20.1.1 …
  address: `${subnet}.${Math.floor(i / 250)}.${(i % 250) + 1}`,
  port: cfg.getNumber("memberPort") ?? 8080,
  weight: cfg.getNumber("generatedWeight") ?? 1,
}));
const members = [...given, ...generated];

const pool = new ipvs.RealServerPool("backends", {
  service: web,
  members,
  // A removed member first gets weight 0 and its open connections up to 30 s to end.
  drain: { timeoutSeconds: 30 },
});

export const service = web.id;
export const memberCount = pool.members.apply((m) => Object.keys(m).length);
