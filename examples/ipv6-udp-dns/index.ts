// IPv6 DNS: a UDP service and its TCP twin on one IPv6 VIP, port 53, over the same resolvers.
//
// - UDP is a plain service: a resolver client asks each query from a new source port, so queries spread over the
//   resolvers. Not onePacket: with NAT real servers (as here) the kernel cannot translate the answers back, and every
//   query would time out (README, `onePacket`); it suits resolvers behind "dr" or "tunnel", which answer directly.
// - TCP (zone transfers, large answers, retries after truncation) is a plain service with least-connection.
// - IPv6 addresses are stored compressed and lowercase ("2001:DB8:0::53" and "2001:db8::53" are the same entry).
//
// Config (pulumi config set …):
//   host, port, user        the director (port default 22, user default "root")
//   privateKey              SSH private key text, as a secret: pulumi config set --secret privateKey < ~/.ssh/id_ed25519
//   hostKey | knownHosts    the director's host key line, or a known_hosts file
//   vip                     the IPv6 VIP (default 2001:db8:53::53)
//   resolvers               JSON list of resolver IPv6 addresses (default ["fd00:10:0::11","fd00:10:0::12"])
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
const vip = cfg.get("vip") ?? "2001:db8:53::53";
const resolvers = cfg.getObject<string[]>("resolvers") ?? ["fd00:10:0::11", "fd00:10:0::12"];

const dnsUdp = new ipvs.VirtualService("dns-udp", {
  directors: [director],
  protocol: "udp",
  address: vip,
  port: 53,
  scheduler: "rr",
});

const dnsTcp = new ipvs.VirtualService("dns-tcp", {
  directors: [director],
  protocol: "tcp",
  address: vip,
  port: 53,
  scheduler: "lc",
});

const backends = [
  ...resolvers.map((address, i) => new ipvs.RealServer(`dns-udp-${i + 1}`, { service: dnsUdp, address, forwarding: "nat" })),
  ...resolvers.map((address, i) => new ipvs.RealServer(`dns-tcp-${i + 1}`, { service: dnsTcp, address, forwarding: "nat" })),
];

export const services = [dnsUdp.id, dnsTcp.id];
export const realServers = backends.map((b) => b.id);
