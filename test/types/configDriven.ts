// A program that takes its enum-like settings from stack config, as users write them: plain strings must compile
// (the provider checks the values at preview). Type-checked by `tsc -p tsconfig.test.json` and test/unit/types.test.ts.
import * as pulumi from "@pulumi/pulumi";
import * as ipvs from "pulumi-ipvs";

const cfg = new pulumi.Config();
const director: ipvs.DirectorArgs = {
  host: cfg.require("host"),
  user: cfg.get("user") ?? "ops",
  privateKey: cfg.requireSecret("sshKey"),
  hostKey: cfg.require("hostKey"),
};

const service = new ipvs.VirtualService("svc", {
  directors: [director],
  protocol: cfg.get("protocol") ?? "tcp",
  address: cfg.require("vip"),
  port: cfg.getNumber("port") ?? 80,
  scheduler: cfg.get("scheduler") ?? "rr",
  schedulerFlags: cfg.getObject<string[]>("schedulerFlags") ?? [],
  persistence: { timeout: 300, engine: cfg.get("persistenceEngine") },
  healthCheck: {
    type: cfg.get("checkType") ?? "http",
    http: { method: cfg.get("checkMethod") ?? "GET", expectStatus: cfg.get("expectStatus") },
    onFailure: cfg.get("onFailure") ?? "quiesce",
  },
  minHealthy: cfg.get("minHealthy") ?? 1,
  sorryServer: { address: cfg.require("sorry"), forwarding: cfg.get("sorryForwarding") ?? "nat" },
});

const mark = new ipvs.VirtualService("mark", { directors: [director], fwmark: 7, family: cfg.get("family") ?? "ipv4" });

for (const [i, address] of (cfg.getObject<string[]>("backends") ?? []).entries()) {
  new ipvs.RealServer(`rs-${i}`, {
    service,
    address,
    forwarding: cfg.get("forwarding") ?? "nat",
    tunnel: { type: cfg.get("tunnelType") ?? "ipip", checksum: cfg.get("tunnelChecksum") ?? "nocsum" },
    healthCheck: { type: "dns", dns: { name: "example.org.", type: cfg.get("dnsType") ?? "A", transport: cfg.get("dnsTransport") ?? "udp" } },
  });
}

// Outputs are precisely typed: no casts needed to use them.
export const scheduler: pulumi.Output<ipvs.Scheduler> = service.scheduler;
export const markFamily: pulumi.Output<ipvs.Family> = mark.family;
export const firstDirector: pulumi.Output<string | undefined> = new ipvs.RealServer("typed", { service, address: "10.0.0.9" }).service.apply(
  (s) => s.directors[0]?.host,
);
export const tunnelType: pulumi.Output<ipvs.TunnelType | undefined> = new ipvs.RealServer("tun", { service, address: "10.0.0.8" }).tunnel.apply(
  (t) => t?.type,
);
export const checkInEffect: pulumi.Output<"tcp" | "http" | "https" | "dns" | "none" | undefined> = new ipvs.RealServer("checked", { service, address: "10.0.0.7" }).healthCheck.apply(
  (c) => c?.type,
);
export const read = ipvs.VirtualService.get("existing", "tcp/192.0.2.10:80@203.0.113.5:22", { directors: [director] }).scheduler;
