// Firewall-mark service: HTTP and HTTPS of one VIP balanced as ONE service, so a client that starts on port 80 and
// moves to 443 stays on the same real server (persistence works across the ports of the mark).
//
// The mark is set by the director's firewall, which this program does not manage; for example:
//   iptables -t mangle -A PREROUTING -d 192.0.2.30/32 -p tcp -m multiport --dports 80,443 -j MARK --set-mark 1
//   nft add rule ip mangle prerouting ip daddr 192.0.2.30 tcp dport { 80, 443 } meta mark set 1
// A fwmark service has no protocol, address or port; its real servers have port 0 = keep the packet's port.
//
// Config (pulumi config set …):
//   host, port, user        the director (port default 22, user default "root")
//   privateKey              SSH private key text, as a secret: pulumi config set --secret privateKey < ~/.ssh/id_ed25519
//   hostKey | knownHosts    the director's host key line, or a known_hosts file
//   mark                    the firewall mark (default 1)
//   backends                JSON list of real server IPs (default ["10.10.0.11","10.10.0.12","10.10.0.13"])
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

const web = new ipvs.VirtualService("web-mark", {
  directors: [director],
  fwmark: cfg.getNumber("mark") ?? 1,
  family: "ipv4",
  scheduler: "wlc",
  // Sticky for 30 minutes, across every port the mark covers.
  persistence: { timeout: 1800 },
});

const backends = cfg.getObject<string[]>("backends") ?? ["10.10.0.11", "10.10.0.12", "10.10.0.13"];

export const realServers = backends.map(
  (address, i) =>
    new ipvs.RealServer(`mark-${i + 1}`, {
      service: web,
      address,
      // NAT, port left out: 0 = the real server gets the port the client used (80 or 443).
      forwarding: "nat",
      weight: 10,
      // Protect a backend from overload: no new connections above 500, resume below 400.
      upperThreshold: 500,
      lowerThreshold: 400,
    }).id,
);
export const service = web.id;
