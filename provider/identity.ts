// Resource ids. An id names the kernel entry and the directors it was created on:
//   VirtualService  tcp/192.0.2.10:80@10.0.0.5:22,10.0.0.6:22      fwmark/ipv6/7@10.0.0.5:22
//   RealServer      tcp/192.0.2.10:80/10.0.0.11:8080@10.0.0.5:22   fwmark/ipv4/7/[2001:db8::11]:0@…
// Directors are sorted so the same set gives the same id. Directors can change in place (diff.ts), and an update cannot
// change an id, so after such an update the id still lists the directors of creation: state's `directors` output is
// authoritative; the id's directors only serve `get(name, id)` when no directors are given.
import { directorKey, hostPort } from "./director";
import type { DestKey, ServiceKey } from "./protocol";
import { parseIp } from "./schema";

export interface DirectorRef {
  host: string;
  port: number;
}

function parseHostPort(s: string, what: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(s);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`${what} ${JSON.stringify(s)} is not host:port or [IPv6]:port`);
  return { host: (m[1] ?? m[2])!, port };
}

/** "tcp/192.0.2.10:80", "udp/[2001:db8::1]:53", "fwmark/ipv4/7". */
export function serviceIdPart(key: ServiceKey): string {
  return "fwmark" in key ? `fwmark/${key.family}/${key.fwmark}` : `${key.protocol}/${hostPort(key.address, key.port)}`;
}

function directorsPart(directors: readonly DirectorRef[]): string {
  return directors.map(directorKey).sort().join(",");
}

export function virtualServiceId(service: ServiceKey, directors: readonly DirectorRef[]): string {
  return `${serviceIdPart(service)}@${directorsPart(directors)}`;
}

export function realServerId(service: ServiceKey, dest: DestKey, directors: readonly DirectorRef[]): string {
  return `${serviceIdPart(service)}/${hostPort(dest.address, dest.port)}@${directorsPart(directors)}`;
}

function parseIpPort(s: string, what: string): { address: string; port: number; family: "ipv4" | "ipv6" } {
  const hp = parseHostPort(s, what);
  const ip = parseIp(hp.host);
  if (!ip) throw new Error(`${what} ${JSON.stringify(s)} does not hold an IP address`);
  return { address: ip.address, port: hp.port, family: ip.family };
}

/** Split an id into its service key, the rest of the entry part (dest, if any) and its directors. */
function split(id: string, kind: string, withDest: boolean): { service: ServiceKey; dest?: DestKey; directors: DirectorRef[] } {
  const fail = (why: string) => new Error(`${JSON.stringify(id)} is not a ${kind} id (${why}); expected e.g. ${withDest ? "tcp/192.0.2.10:80/10.0.0.11:8080@10.0.0.5:22" : "tcp/192.0.2.10:80@10.0.0.5:22"}`);
  const at = id.lastIndexOf("@");
  if (at < 0) throw fail("no @ before the directors");
  const entry = id.slice(0, at).split("/");
  const directors = id.slice(at + 1).split(",").filter((d) => d !== "").map((d) => parseHostPort(d, "director"));
  if (directors.length === 0) throw fail("no directors");
  const want = (entry[0] === "fwmark" ? 3 : 2) + (withDest ? 1 : 0);
  if (entry.length !== want) throw fail(`${entry.length} "/"-separated parts, expected ${want}`);
  let service: ServiceKey;
  if (entry[0] === "fwmark") {
    const family = entry[1];
    const fwmark = Number(entry[2]);
    if (family !== "ipv4" && family !== "ipv6") throw fail(`family ${JSON.stringify(family)}`);
    if (!/^\d+$/.test(entry[2]!) || fwmark < 1 || fwmark > 4294967295) throw fail(`fwmark ${JSON.stringify(entry[2])}`);
    service = { family, fwmark };
  } else {
    const protocol = entry[0];
    if (protocol !== "tcp" && protocol !== "udp" && protocol !== "sctp") throw fail(`protocol ${JSON.stringify(protocol)}`);
    const { address, port, family } = parseIpPort(entry[1]!, "service address");
    service = { family, protocol, address, port };
  }
  if (!withDest) return { service, directors };
  const { address, port } = parseIpPort(entry[entry.length - 1]!, "real server address");
  return { service, dest: { address, port }, directors };
}

export function parseVirtualServiceId(id: string): { service: ServiceKey; directors: DirectorRef[] } {
  const { service, directors } = split(id, "VirtualService", false);
  return { service, directors };
}

export function parseRealServerId(id: string): { service: ServiceKey; dest: DestKey; directors: DirectorRef[] } {
  const { service, dest, directors } = split(id, "RealServer", true);
  return { service, dest: dest!, directors };
}
