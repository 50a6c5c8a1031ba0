// DR pair: one TCP virtual service on TWO directors (an HA pair), forwarding by direct routing, and the real servers'
// hosts prepared for it.
//
// What it declares: the same service (VIP:80, weighted least-connection, persistent per /24 for 5 minutes) on both
// directors, and the same real servers behind it with forwarding "dr". Either director can take the traffic; which one
// does is decided by whoever owns the VIP (keepalived/VRRP, BGP/ECMP, …) — that part is outside this program.
// Adding or removing a director later is an in-place update: the service on the directors you keep is not touched.
//
// Direct routing only rewrites the MAC address, so:
//   - the directors and the real servers must share an L2 segment;
//   - the real server port must equal the service port (leave `port` out);
//   - every real server must accept the VIP as its own without answering ARP for it: a RealServerHost per real
//     server does that over SSH (the VIP on lo, arp_ignore=1 and arp_announce=2), and destroy puts the host back;
//   - replies go from the real servers straight to the clients, not back through a director.
//
// Config (pulumi config set …):
//   directorA, directorB   host or "host:port" of each director           (required)
//   user                   SSH user on the directors and real servers (default "root"; non-root uses sudo -n)
//   privateKey             SSH private key text, as a secret: pulumi config set --secret privateKey < ~/.ssh/id_ed25519
//   hostKeyA, hostKeyB     each director's host key line (/etc/ssh/ssh_host_ed25519_key.pub); or knownHosts for all
//   knownHosts             known_hosts content or path, instead of the pins
//   vip                    the virtual IP (default 192.0.2.20)
//   backends               JSON list of real server IPs (default ["10.10.0.11","10.10.0.12"])
//   realServerHostKey      the real servers' host key line (else knownHosts)
//   realServerHosts        JSON list of { address, via?: "A" | "B" }: where each real server host is reached over SSH,
//                          directly or through that director as jump host (default: each backend, directly)
//   prepareRealServers     "false" leaves the real servers' hosts alone (prepared some other way)
import * as pulumi from "@pulumi/pulumi";
import * as ipvs from "pulumi-ipvs";

const cfg = new pulumi.Config();

function director(spec: string, hostKey: string | undefined): ipvs.DirectorArgs {
  const m = /^(.*):(\d+)$/.exec(spec);
  return {
    host: m ? m[1]! : spec,
    port: m ? Number(m[2]) : 22,
    user: cfg.get("user") ?? "root",
    privateKey: cfg.getSecret("privateKey"),
    privateKeyPath: cfg.get("privateKeyPath"),
    hostKey,
    knownHosts: hostKey ? undefined : cfg.get("knownHosts"),
  };
}

const directors = [
  director(cfg.require("directorA"), cfg.get("hostKeyA")),
  director(cfg.require("directorB"), cfg.get("hostKeyB")),
];
const vip = cfg.get("vip") ?? "192.0.2.20";

const web = new ipvs.VirtualService("web", {
  directors,
  protocol: "tcp",
  address: vip,
  port: 80,
  scheduler: "wlc",
  // Clients from the same /24 keep their real server for 5 minutes, on whichever director they land.
  persistence: { timeout: 300, netmask: "255.255.255.0" },
});

const backends = cfg.getObject<string[]>("backends") ?? ["10.10.0.11", "10.10.0.12"];

const servers = backends.map(
  (address, i) =>
    new ipvs.RealServer(`web-${i + 1}`, {
      service: web,
      address,
      forwarding: "dr",
      weight: 100,
      // Taking a server out: stop new connections, wait up to 2 minutes for open ones, then remove it.
      drain: { timeoutSeconds: 120 },
    }),
);

// The hosts behind the real servers: each accepts the service's VIP. A real server on a network only the directors
// reach is prepared through a director as SSH jump host.
const jumps: Record<string, ipvs.DirectorArgs> = { A: directors[0]!, B: directors[1]! };
type HostSpec = { address: string; via?: "A" | "B" };
const hosts: HostSpec[] = cfg.getObject<HostSpec[]>("realServerHosts") ?? backends.map((address) => ({ address }));
const realServerHostKey = cfg.get("realServerHostKey");
const prepared =
  cfg.getBoolean("prepareRealServers") === false
    ? []
    : hosts.map(
        (h, i) =>
          new ipvs.RealServerHost(`web-host-${i + 1}`, {
            host: {
              host: h.address,
              user: cfg.get("user") ?? "root",
              privateKey: cfg.getSecret("privateKey"),
              privateKeyPath: cfg.get("privateKeyPath"),
              hostKey: realServerHostKey,
              knownHosts: realServerHostKey ? undefined : cfg.get("knownHosts"),
              jumpHost: h.via ? jumps[h.via] : undefined,
            },
            services: [web],
            forwarding: "dr",
          }),
      );

export const service = web.id;
export const preparedVips = prepared.map((h) => h.vips);
export const realServers = servers.map((s) => s.id);
