// Quickstart: one TCP virtual service on one director, balanced round robin over three NAT real servers.
// `npm run demo` runs it against the lab director; against your own director set the config keys below.
import * as pulumi from "@pulumi/pulumi";
import * as ipvs from "pulumi-ipvs";

const cfg = new pulumi.Config();

const director: ipvs.DirectorArgs = {
  host: cfg.require("host"),
  port: cfg.getNumber("port") ?? 22,
  user: cfg.get("user") ?? "root",
  // A key as a secret (`pulumi config set --secret privateKey < key`) or a key file path; or agent: true.
  privateKey: cfg.getSecret("privateKey"),
  privateKeyPath: cfg.get("privateKeyPath"),
  // Pin the director's host key (its /etc/ssh/ssh_host_ed25519_key.pub line); unknown keys are refused.
  hostKey: cfg.get("hostKey"),
  knownHosts: cfg.get("knownHosts"),
};

const web = new ipvs.VirtualService("web", {
  directors: [director],
  protocol: "tcp",
  address: cfg.get("vip") ?? "192.0.2.10",
  port: 80,
  scheduler: (cfg.get("scheduler") ?? "rr") as ipvs.Scheduler,
});

const backends = cfg.getObject<string[]>("backends") ?? ["10.10.0.11", "10.10.0.12", "10.10.0.13"];
const weight = cfg.getNumber("weight") ?? 1;

export const realServers = backends.map(
  (address, i) =>
    new ipvs.RealServer(`app-${i + 1}`, {
      service: web,
      address,
      port: 80,
      forwarding: "nat",
      weight,
      // Removing a backend waits for its open connections first (up to 30 s).
      drain: { timeoutSeconds: 30 },
    }).id,
);
export const service = web.id;
