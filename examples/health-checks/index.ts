// Health checks: the checker on each director (`ipvs-helper health`, a systemd unit the helper installs) takes a dead
// real server out of the pool within seconds, between two `pulumi up`s, and puts it back when it answers again.
//
// - web: HTTP, every real server checked with GET /healthz (the service's default check). A server goes down after 3
//   failed checks in a row and comes back after 2 good ones; down means weight 0 (quiesced: open connections finish).
//   `minHealthy: "50%"` keeps at least half the pool in even when more fail (a bad check must not empty the pool),
//   and the sorry server answers while none is healthy.
// - dns: a UDP service over a pool of resolvers, checked with a real question (a name they resolve); one resolver,
//   still being set up, opts out with `{ type: "none" }`.
// - Refresh shows no change for a depooled server: state keeps the declared weight; `pulumi-ipvs status` shows the
//   health of each real server, and `DirectorSettings.healthMetricsDirectory` writes Prometheus metrics.
//
// Config (pulumi config set …):
//   host, port, user        the director (port default 22, user default "root")
//   privateKey              SSH private key text, as a secret: pulumi config set --secret privateKey < ~/.ssh/id_ed25519
//   hostKey | knownHosts    the director's host key line, or a known_hosts file
//   vip                     the VIP of both services (default 192.0.2.40)
//   web                     JSON list of web server addresses (default ["10.10.0.11","10.10.0.12","10.10.0.13"])
//   sorry                   the sorry server's address (default 10.10.0.99)
//   resolvers               JSON list of resolver addresses (default ["10.10.0.21","10.10.0.22"])
//   checkName               the name the resolvers are asked for (default www.example.org.)
//   newResolver             the resolver being set up (default 10.10.0.23)
import * as pulumi from "@pulumi/pulumi";
import * as ipvs from "pulumi-ipvs";

const cfg = new pulumi.Config();

const director: ipvs.DirectorArgs = {
  host: cfg.require("host"),
  port: cfg.getNumber("port") ?? 22,
  user: cfg.get("user") ?? "root",
  privateKey: cfg.getSecret("privateKey"),
  hostKey: cfg.get("hostKey"),
  knownHosts: cfg.get("knownHosts"),
};
const vip = cfg.get("vip") ?? "192.0.2.40";

const web = new ipvs.VirtualService("web", {
  directors: [director],
  protocol: "tcp",
  address: vip,
  port: 80,
  scheduler: "wlc",
  healthCheck: {
    type: "http",
    intervalSeconds: 2,
    timeoutSeconds: 1,
    http: { path: "/healthz", expectStatus: "200" },
  },
  minHealthy: "50%",
  sorryServer: { address: cfg.get("sorry") ?? "10.10.0.99" },
});

const webServers = cfg.getObject<string[]>("web") ?? ["10.10.0.11", "10.10.0.12", "10.10.0.13"];
export const webRealServers = webServers.map(
  (address, i) => new ipvs.RealServer(`web-${i + 1}`, { service: web, address, port: 80, forwarding: "nat", weight: 10 }).id,
);

const dns = new ipvs.VirtualService("dns", {
  directors: [director],
  protocol: "udp",
  address: vip,
  port: 53,
  scheduler: "rr",
});

const resolvers = cfg.getObject<string[]>("resolvers") ?? ["10.10.0.21", "10.10.0.22"];
const resolverPool = new ipvs.RealServerPool("resolvers", {
  service: dns,
  // Every member's check unless it declares its own.
  healthCheck: {
    type: "dns",
    dns: { name: cfg.get("checkName") ?? "www.example.org.", type: "A", transport: "udp" },
    intervalSeconds: 2,
    timeoutSeconds: 1,
  },
  members: [
    ...resolvers.map((address) => ({ address, port: 53, forwarding: "nat" as const })),
    // Taking no queries yet (weight 0) and not checked until it is ready.
    { address: cfg.get("newResolver") ?? "10.10.0.23", port: 53, forwarding: "nat", weight: 0, healthCheck: { type: "none" } },
  ],
});

export const webService = web.id;
export const dnsService = dns.id;
export const resolverChecks = resolverPool.members.apply((m) => Object.fromEntries(Object.entries(m).map(([k, v]) => [k, v.healthCheck?.type ?? "none"])));
