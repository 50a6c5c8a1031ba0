// Tunnel: one TCP virtual service whose real servers are reached through a tunnel, IP-in-IP (ipip) or GRE, so they
// may sit on other networks than the director, and their hosts prepared for it.
//
// What it declares: the service (VIP:80, round robin) on one director, which holds the VIP itself (`bindAddress`:
// on a dummy interface, for a director that receives the VIP's traffic by routing or BGP), and the real servers with
// forwarding "tunnel". The director wraps each client packet in an outer IPv4 header addressed to the real server
// (ipip), or in a GRE header and an outer IPv4 header (gre); the real server unwraps it on tunl0 (ipip) or gre0 (gre)
// and answers the client directly, not back through the director. So:
//   - the real server port must equal the service port (leave `port` out);
//   - every real server must accept the VIP on its decapsulation device without answering ARP for it, and must not
//     drop the unwrapped packets by reverse-path filtering: a RealServerHost per real server does that over SSH
//     (ipip or ip_gre loaded, tunl0 or gre0 up with the VIP, rp_filter relaxed there, arp_ignore/arp_announce),
//     and destroy puts the host back;
//   - the outer headers cost 20 bytes (ipip) or 24 (gre; 28 with its checksum) of MTU between director and real
//     servers: see the README's "Tunnel MTU".
//
// Config (pulumi config set …):
//   director               host or "host:port" of the director                       (required)
//   user                   SSH user on the director and real servers (default "root"; non-root uses sudo -n)
//   privateKey             SSH private key text, as a secret: pulumi config set --secret privateKey < ~/.ssh/id_ed25519
//   hostKey                the director's host key line (/etc/ssh/ssh_host_ed25519_key.pub); or knownHosts for all
//   knownHosts             known_hosts content or path, instead of the pins
//   vip                    the virtual IP (default 192.0.2.30)
//   backends               JSON list of real server IPs (default ["10.10.0.11","10.10.0.12"])
//   tunnelType             "ipip" (default) or "gre"
//   realServerHostKey      the real servers' host key line (else knownHosts)
//   viaDirector            "true": reach the real servers over SSH through the director as jump host
//   prepareRealServers     "false" leaves the real servers' hosts alone (prepared some other way)
import * as pulumi from "@pulumi/pulumi";
import * as ipvs from "pulumi-ipvs";

const cfg = new pulumi.Config();

const m = /^(.*):(\d+)$/.exec(cfg.require("director"));
const hostKey = cfg.get("hostKey");
const director: ipvs.DirectorArgs = {
  host: m ? m[1]! : cfg.require("director"),
  port: m ? Number(m[2]) : 22,
  user: cfg.get("user") ?? "root",
  privateKey: cfg.getSecret("privateKey"),
  privateKeyPath: cfg.get("privateKeyPath"),
  hostKey,
  knownHosts: hostKey ? undefined : cfg.get("knownHosts"),
};
const backends = cfg.getObject<string[]>("backends") ?? ["10.10.0.11", "10.10.0.12"];
// The director's encapsulation and what each real server host is prepared to unwrap: always the same type (another
// value is refused at preview naming the field).
const tunnel = { type: (cfg.get("tunnelType") ?? "ipip") as ipvs.TunnelType };

const web = new ipvs.VirtualService("web", {
  directors: [director],
  protocol: "tcp",
  address: cfg.get("vip") ?? "192.0.2.30",
  port: 80,
  scheduler: "rr",
  bindAddress: true,
});

backends.forEach(
  (address, i) => new ipvs.RealServer(`web-${i + 1}`, { service: web, address, forwarding: "tunnel", tunnel }),
);

const realServerHostKey = cfg.get("realServerHostKey");
const prepared =
  cfg.getBoolean("prepareRealServers") === false
    ? []
    : backends.map(
        (address, i) =>
          new ipvs.RealServerHost(`web-host-${i + 1}`, {
            host: {
              host: address,
              user: director.user,
              privateKey: director.privateKey,
              privateKeyPath: director.privateKeyPath,
              hostKey: realServerHostKey,
              knownHosts: realServerHostKey ? undefined : cfg.get("knownHosts"),
              jumpHost: cfg.getBoolean("viaDirector") ? director : undefined,
            },
            services: [web],
            forwarding: "tunnel",
            tunnel,
          }),
      );

export const vip = web.address;
/** The sysctls each real server host holds, as read back (the ARP settings and tunl0's or gre0's rp_filter). */
export const realServerSysctls = prepared.map((h) => h.sysctls);
