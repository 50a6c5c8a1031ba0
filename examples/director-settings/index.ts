// A production NAT director as a whole: its IPVS timeouts, the kernel settings operators tune on every director, the
// connection sync daemon for failover, IP forwarding, ip_vs_ftp for FTP through NAT, a web service and an FTP service.
// The stack owns these on the director: another stack cannot adopt them, a reboot restores them before any
// `pulumi up`, and `pulumi destroy` puts back the values that were there before (ip_vs_ftp unloaded if it was not
// loaded: once no FTP connection entry holds it, see the README).
import * as pulumi from "@pulumi/pulumi";
import * as ipvs from "pulumi-ipvs";

const cfg = new pulumi.Config();

const ftpPort = cfg.getNumber("ftpPort") ?? 21;

const director: ipvs.DirectorArgs = {
  host: cfg.require("host"),
  port: cfg.getNumber("port") ?? 22,
  user: cfg.get("user") ?? "root",
  privateKey: cfg.getSecret("privateKey"),
  privateKeyPath: cfg.get("privateKeyPath"),
  hostKey: cfg.get("hostKey"),
};

export const settings = new ipvs.DirectorSettings("director", {
  director,
  // ipvsadm --set 900 120 300: idle TCP, TCP after FIN, UDP.
  timeouts: { tcp: 900, tcpFin: 120, udp: 300 },
  sysctls: {
    // Reschedule a reused client port to another real server, so removed real servers stop getting traffic.
    connReuseMode: 1,
    // Expire connections to a removed real server at once instead of letting them time out.
    expireNodestConn: true,
    // A quiesced (weight 0) real server loses its persistence templates.
    expireQuiescentTemplate: true,
  },
  // NAT needs the director to route the real servers' replies.
  ipForward: { ipv4: true },
  // Send connection state to the standby director so failover keeps established connections.
  syncDaemons: [{ state: "master", interface: cfg.get("syncInterface") ?? "eth0", syncId: 1 }],
  // FTP through NAT: ip_vs_ftp, loaded for the FTP service's control port, reads the control connection and rewrites
  // the addresses in PASV answers and PORT commands, and lets the data connections through the VIP. Without it a
  // client logs in and then every transfer, passive or active, fails.
  // The service's port unless ftpPorts lists the control ports of every FTP service on this director (at most 8).
  ftp: { ports: cfg.getObject<number[]>("ftpPorts") ?? [ftpPort] },
}).id;

const web = new ipvs.VirtualService("web", {
  directors: [director],
  protocol: "tcp",
  address: cfg.get("vip") ?? "192.0.2.10",
  port: 80,
  scheduler: "wlc",
});

const backends = cfg.getObject<string[]>("backends") ?? ["10.10.0.11", "10.10.0.12"];
export const realServers = backends.map(
  (address, i) => new ipvs.RealServer(`app-${i + 1}`, { service: web, address, port: 80, forwarding: "nat" }).id,
);
export const service = web.id;

// The FTP servers' data connections need no service of their own: ip_vs_ftp creates each one's connection entry to
// the real server that holds its control connection (passive: the port the server named; active: from VIP port 20).
const ftp = new ipvs.VirtualService("ftp", {
  directors: [director],
  protocol: "tcp",
  address: cfg.get("vip") ?? "192.0.2.10",
  port: ftpPort,
  scheduler: "lc",
});
const ftpServers = cfg.getObject<string[]>("ftpServers") ?? ["10.10.0.21", "10.10.0.22"];
export const ftpRealServers = ftpServers.map(
  (address, i) => new ipvs.RealServer(`ftp-${i + 1}`, { service: ftp, address, port: ftpPort, forwarding: "nat" }).id,
);
export const ftpService = ftp.id;
