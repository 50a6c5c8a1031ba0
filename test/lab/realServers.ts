// Traffic topology inside a lab director: real servers (network namespaces on a bridge behind the director, each running
// busybox httpd that answers its own name), a client namespace that reaches VIPs through the director, and VIP addresses.
//
//   labclient ns 10.9.0.2 / fd00:9::2 ──veth── director 10.9.0.1 / fd00:9::1   (VIPs on the director's labvip0)
//   director labrs0 bridge 10.10.0.1 / fd00:10::1 ──veth── rsN ns 10.10.0.(10+N) / fd00:10::(10+N), default route via director
//
// iproute2 is called by full path: busybox's shell applet `ip` cannot create veths or bridges.
import type { LabDirector } from "./director";
import { shellQuote } from "./ssh";

const IP = "/sbin/ip";

export interface LabRealServer {
  /** Namespace name and the HTTP body it answers with, e.g. "rs1". */
  name: string;
  address: string;
  address6: string;
  port: number;
}

export interface RealServerOptions {
  /** TCP port httpd listens on (default 80). */
  port?: number;
  /** First three octets of the real servers' IPv4 /24 (default "10.10.0"); the director is .1. */
  subnet?: string;
}

const DEFAULT_SUBNET = "10.10.0";

function bridgeSetup(subnet: string): string {
  const third = subnet.split(".")[2];
  return `
if ! ${IP} link show labrs0 >/dev/null 2>&1; then
  ${IP} link add labrs0 type bridge
  ${IP} addr add ${subnet}.1/24 dev labrs0
  ${IP} addr add fd00:10:${third}::1/64 dev labrs0 nodad
  ${IP} link set labrs0 up
fi`;
}

/**
 * Adds n real servers (numbered after the ones already there). NAT mode works out of the box: their default route is
 * the director. Returns them in order.
 */
export async function addRealServers(d: LabDirector, n: number, opts: RealServerOptions = {}): Promise<LabRealServer[]> {
  const port = opts.port ?? 80;
  const subnet = opts.subnet ?? DEFAULT_SUBNET;
  if (!/^\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(subnet)) throw new Error(`subnet must be three octets like "10.10.0", not "${subnet}"`);
  const third = subnet.split(".")[2];
  const existing = Number((await d.exec(`ls /run/netns 2>/dev/null | grep -c '^rs[0-9]' || true`)).stdout.trim());
  if (existing + n > 200) throw new Error(`lab director ${d.name}: at most 200 real servers (has ${existing}, asked ${n} more)`);
  const servers: LabRealServer[] = Array.from({ length: n }, (_, k) => {
    const i = existing + k + 1;
    return { name: `rs${i}`, address: `${subnet}.${10 + i}`, address6: `fd00:10:${third}::${10 + i}`, port };
  });
  await d.exec(realServersScript(servers, subnet), { timeoutMs: 120_000 });
  return servers;
}

/**
 * The shell script that creates these real servers (bridge, namespaces, addresses, routes, index.html) and starts
 * the httpd of each for which `serve` says so. addRealServers runs it; a persistent-disk test can also run it from a
 * boot unit, to stand for real servers that kept running while the director rebooted.
 */
export function realServersScript(servers: LabRealServer[], subnet = DEFAULT_SUBNET, serve: (s: LabRealServer) => boolean = () => true): string {
  const third = subnet.split(".")[2];
  return [
    "set -e",
    bridgeSetup(subnet),
    ...servers.map(
      (s) => `
${IP} netns add ${s.name}
${IP} link add ${s.name} type veth peer name eth0 netns ${s.name}
${IP} link set ${s.name} master labrs0 up
${IP} -n ${s.name} link set lo up
${IP} -n ${s.name} link set eth0 up
${IP} -n ${s.name} addr add ${s.address}/24 dev eth0
${IP} -n ${s.name} addr add ${s.address6}/64 dev eth0 nodad
${IP} -n ${s.name} route add default via ${subnet}.1
${IP} -n ${s.name} -6 route add default via fd00:10:${third}::1
mkdir -p /run/lab/${s.name}
printf %s ${s.name} > /run/lab/${s.name}/index.html` +
        (serve(s)
          ? `
${IP} netns exec ${s.name} busybox httpd -p ${s.port} -h /run/lab/${s.name}
i=0
until ${IP} netns exec ${s.name} netstat -ltn | grep -q ':${s.port} '; do
  i=$((i+1)); [ $i -lt 300 ] || { echo "real server ${s.name} (${s.address}): its httpd did not listen on port ${s.port} within 30 s" >&2; exit 1; }
  sleep 0.1
done`
          : ""),
    ),
  ].join("\n");
}

/**
 * Shell: kills every process in namespace ns. One that ended between the listing and its kill is no failure: busybox
 * httpd forks a child per connection, and a health probe's child often ends in that gap.
 */
export const killAllIn = (ns: string) => `for p in $(${IP} netns pids ${ns}); do kill $p 2>/dev/null || [ ! -e /proc/$p ]; done`;

/** Shell: waits (10 s at most) until something in s's namespace listens, or (listening false) nothing does, on TCP port. */
export const awaitListener = (s: LabRealServer, port: number, listening = true) =>
  `i=0; until ${listening ? "" : "! "}${IP} netns exec ${s.name} netstat -ltn | grep -q ':${port} '; do i=$((i+1)); [ $i -lt 100 ] || { echo "${s.name}: ${listening ? "nothing listens" : "something still listens"} on ${port} after 10 s" >&2; exit 1; }; sleep 0.1; done`;

/** Shell: stops s's httpd (and everything else in its namespace), returning once nothing listens on its port. */
export const stopHttpd = (s: LabRealServer) => `${killAllIn(s.name)}\n${awaitListener(s, s.port, false)}`;

/** Shell: starts s's httpd unless something listens on its port already (a child serving a connection does not count). */
export const startHttpd = (s: LabRealServer) =>
  `${IP} netns exec ${s.name} netstat -ltn | grep -q ':${s.port} ' || ${IP} netns exec ${s.name} busybox httpd -p ${s.port} -h /run/lab/${s.name}`;

/**
 * Makes each real server namespace an SSH host: sshd in the namespace, in a mount namespace of its own whose
 * /var/lib/pulumi-ipvs (the helper's ledger) and /etc/systemd/system (where the helper keeps its boot unit, on a
 * director with a persistent disk) are private tmpfs, so every real server keeps its own ledger and boot unit, as
 * separate machines would: a real server's last record going must not remove the director's boot unit. The helper
 * binary and the lock under /run stay shared with the director (one binary, one lock).
 */
export async function serveSsh(d: LabDirector, servers: LabRealServer[]): Promise<void> {
  await d.exec(`set -e
mkdir -p /var/lib/pulumi-ipvs
${servers
  .map(
    (s) => `setsid ${IP} netns exec ${s.name} unshare -m sh -c 'mount -t tmpfs -o mode=0755 tmpfs /var/lib/pulumi-ipvs && { [ ! -d /etc/systemd/system ] || mount -t tmpfs -o mode=0755 tmpfs /etc/systemd/system; } && exec /usr/sbin/sshd -E /var/log/sshd-${s.name}.log -o PidFile=/run/sshd-${s.name}.pid' </dev/null >/dev/null 2>&1 &
i=0; until ${IP} netns exec ${s.name} netstat -ltn | grep -q ':22 '; do i=$((i+1)); [ $i -lt 100 ] || { echo "sshd in ${s.name} did not listen" >&2; exit 1; }; sleep 0.1; done`,
  )
  .join("\n")}`);
}

const CLIENT_SETUP = `
if [ ! -e /run/netns/labclient ]; then
  ${IP} netns add labclient
  ${IP} link add labclient type veth peer name eth0 netns labclient
  ${IP} addr add 10.9.0.1/24 dev labclient
  ${IP} addr add fd00:9::1/64 dev labclient nodad
  ${IP} link set labclient up
  ${IP} -n labclient link set lo up
  ${IP} -n labclient link set eth0 up
  ${IP} -n labclient addr add 10.9.0.2/24 dev eth0
  ${IP} -n labclient addr add fd00:9::2/64 dev eth0 nodad
  ${IP} -n labclient route add default via 10.9.0.1
  ${IP} -n labclient -6 route add default via fd00:9::1
fi`;

/** Runs a shell command in the client namespace (created when missing), e.g. an FTP client; its output as exec gives it. */
export async function inClient(d: LabDirector, command: string, opts: { check?: boolean; timeoutMs?: number } = {}) {
  return d.exec(`set -e\n${CLIENT_SETUP}\nset +e\n${IP} netns exec labclient sh -c ${shellQuote(command)}`, opts);
}

/** Makes `vip` a local address of the director (on a dummy interface), so IPVS sees traffic to it. Idempotent. */
export async function addVip(d: LabDirector, vip: string): Promise<void> {
  const plen = vip.includes(":") ? 128 : 32;
  await d.exec(`set -e
${IP} link show labvip0 >/dev/null 2>&1 || { ${IP} link add labvip0 type dummy; ${IP} link set labvip0 up; }
${IP} addr show dev labvip0 | grep -q ' ${vip}/${plen} ' || ${IP} addr add ${vip}/${plen} dev labvip0 nodad`);
}

const END = "--lab-request-end--";

/**
 * Sends k sequential HTTP/1.0 GETs from the client namespace to vip:port and returns the response bodies in order.
 * A request without an HTTP 200 answer throws, unless allowFailures: then its entry is "".
 */
export async function httpRequests(
  d: LabDirector,
  vip: string,
  port: number,
  k: number,
  opts: { allowFailures?: boolean; timeoutSeconds?: number } = {},
): Promise<string[]> {
  const wait = opts.timeoutSeconds ?? 5;
  const loop = `i=0; while [ $i -lt ${k} ]; do i=$((i+1)); printf 'GET / HTTP/1.0\\r\\nHost: lab\\r\\n\\r\\n' | busybox nc -w ${wait} ${vip} ${port} 2>&1; echo; echo ${END}; done`;
  const { stdout } = await d.exec(`set -e\n${CLIENT_SETUP}\n${IP} netns exec labclient sh -c ${shellQuote(loop)}`, {
    timeoutMs: (wait + 10) * 1000 * k + 30_000,
  });
  const answers = stdout.split(`\n${END}\n`).slice(0, k);
  return answers.map((raw, i) => {
    const sep = raw.indexOf("\r\n\r\n");
    if (/^HTTP\/1\.[01] 200 /.test(raw) && sep >= 0) return raw.slice(sep + 4).trim();
    if (opts.allowFailures) return "";
    throw new Error(`lab director ${d.name}: HTTP request ${i + 1}/${k} to ${vip}:${port} got no 200 answer: ${JSON.stringify(raw.slice(0, 300))}`);
  });
}

export interface LongConnection {
  /** The client's source port, to find the connection in `ipvsadm -Lnc`. */
  localPort: number;
  /** Ends the connection; resolves once the real server has acknowledged the close (so IPVS has seen the FIN). */
  close(): Promise<void>;
  /**
   * Kills the client without waiting for the TCP close to complete: for a connection whose real server is gone (IPVS
   * then drops its FIN, so a graceful close() would wait on a kernel timeout), and for clean-up.
   */
  abort(): Promise<void>;
}

let longCounter = 0;

/**
 * Opens a TCP connection from the client namespace to vip:port and keeps it established until close(): it sends an
 * HTTP request whose header never ends (one header line every 2 s), so httpd keeps waiting. Resolves once established.
 */
export async function openLongConnection(d: LabDirector, vip: string, port: number): Promise<LongConnection> {
  const id = `/run/lab/long-${process.pid}-${++longCounter}`;
  const hold = `echo $$ > ${id}.pid; { printf 'GET / HTTP/1.0\\r\\n'; while :; do printf 'X-Hold: 1\\r\\n'; sleep 2; done; } | busybox nc ${vip} ${port} >/dev/null 2>&1`;
  // busybox netstat prints "local foreign state"; busybox nc cannot pick its source port, so the new connection is the
  // established one to vip:port whose local address was not in the list taken before.
  const established = (except: string) =>
    `${IP} netns exec labclient netstat -tn | awk -v old=" ${except} " '$5 == "${vip}:${port}" && $6 == "ESTABLISHED" && !index(old, " " $4 " ") { print $4 }'`;
  const { stdout } = await d.exec(`set -e
${CLIENT_SETUP}
mkdir -p /run/lab
before="$(${established("")} | tr '\\n' ' ')"
setsid ${IP} netns exec labclient sh -c ${shellQuote(hold)} </dev/null >/dev/null 2>&1 &
i=0
until local="$(${established("$before")} | head -n1)" && [ -n "$local" ]; do
  i=$((i+1)); [ $i -lt 300 ] || { echo "labclient: no new established connection to ${vip}:${port}" >&2; exit 1; }
  sleep 0.1
done
echo "$local"`);
  const local = stdout.trim();
  const localPort = Number(local.slice(local.lastIndexOf(":") + 1));
  const kill = `[ -e ${id}.pid ] || exit 0
kill -- -$(cat ${id}.pid) 2>/dev/null || true
rm -f ${id}.pid`;
  return {
    localPort,
    async abort() {
      await d.exec(kill);
    },
    async close() {
      await d.exec(`${kill}
i=0
while ${IP} netns exec labclient netstat -tn | awk '$4 == "${local}" && ($6 == "ESTABLISHED" || $6 == "FIN_WAIT1") { f = 1 } END { exit !f }'; do
  i=$((i+1)); [ $i -lt 300 ] || { echo "labclient: connection ${local} -> ${vip}:${port} did not close" >&2; exit 1; }
  sleep 0.1
done`);
    },
  };
}
