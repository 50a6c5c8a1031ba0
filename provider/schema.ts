// The one source of truth for VirtualService / RealServer input rules (ipvsadm's rules, reference/ipvs-netlink.md §4,
// plus the SSH connection rules). check() and diff() run at preview and must stay pure: nothing here opens a connection
// or reads a file. Everything that maps user fields to the helper's vocabulary lives here too (serviceKey & co.).
//
// Unknowns: during preview the engine sends not-yet-known values as the string UNKNOWN, whatever the field's type.
// Every leaf schema therefore also accepts UNKNOWN (`u()`), and every cross-field rule skips itself when one of its
// fields is UNKNOWN, so an unknown value never fails and never hides another field's failure. parse*() then refuses any
// UNKNOWN left over: by create/update time every value must be known.
import * as net from "node:net";
import { z } from "zod";
import { directorKey, type Director, type SshEndpoint } from "./director";
import type {
  DestKey,
  DestSettings,
  Family,
  SchedulerFlag,
  ServiceKey,
  ServiceSettings,
  TransportProtocol,
} from "./protocol";

export type { Family, SchedulerFlag, TransportProtocol } from "./protocol";

// ---------------------------------------------------------------------------------------------------------------------
// Unknown values

/** What the Node dynamic-provider plugin hands us for a value that is not known yet (preview). */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
export type Unknown = typeof UNKNOWN;
export const isUnknown = (v: unknown): v is Unknown => v === UNKNOWN;

/** T with UNKNOWN removed everywhere: the shape of fully known (create/update time) values. */
export type Known<T> = T extends Unknown
  ? never
  : T extends readonly (infer E)[]
    ? Known<E>[]
    : T extends object
      ? { [K in keyof T]: Known<T[K]> }
      : T;

/** T where every property may be UNKNOWN: the shape check() returns. */
export type Checked<T> = T extends readonly (infer E)[]
  ? Checked<E>[] | Unknown
  : T extends object
    ? { [K in keyof T]: Checked<T[K]> } | Unknown
    : T | Unknown;

const unknownLiteral = z.literal(UNKNOWN);
/** Accept the preview UNKNOWN in place of a value of `s`. */
const u = <T extends z.ZodType>(s: T) => z.union([unknownLiteral, s]);

/** An error message that says "is required" when the value is missing, `text` otherwise. */
const rule =
  (text: string) =>
  (iss: { input?: unknown }): string =>
    iss.input === undefined ? "is required" : text;

// ---------------------------------------------------------------------------------------------------------------------
// Leaf values

/** Parse an IP literal strictly (no hostnames, no zone ids); IPv6 in the compressed lowercase form the kernel reports. */
export function parseIp(s: string): { family: Family; address: string } | undefined {
  if (net.isIPv4(s)) return { family: "ipv4", address: s };
  if (s.includes("%") || !net.isIPv6(s)) return undefined;
  // The WHATWG URL serializer writes IPv6 exactly as RFC 5952 (lowercase, longest zero run compressed).
  return { family: "ipv6", address: new URL(`http://[${s}]/`).hostname.slice(1, -1) };
}

/** Why an address cannot be a VIP or (role "dest") a real server, or undefined when it can (kernel wants unicast). */
function unicastProblem(family: Family, address: string, role: "vip" | "dest"): string | undefined {
  if (family === "ipv4") {
    const first = Number(address.split(".")[0]);
    if (address === "0.0.0.0") return "cannot be the unspecified address 0.0.0.0";
    // RFC 1122 "this network": no host has such an address (the kernel types it broadcast and refuses it as a dest).
    if (first === 0) return 'cannot be in 0.0.0.0/8 ("this network", RFC 1122): no host has such an address';
    if (address === "255.255.255.255") return "cannot be the broadcast address";
    if (first >= 224 && first <= 239) return "cannot be a multicast address";
    return undefined;
  }
  if (address === "::") return "cannot be the unspecified address ::";
  if (address.startsWith("ff")) return "cannot be a multicast address";
  // ::ffff:a.b.c.d would be shown differently by the kernel/helper than we normalise it; the IPv4 form is meant.
  if (/^::ffff:[0-9a-f]{1,4}:[0-9a-f]{1,4}$/.test(address)) return "is IPv4-mapped: use the plain IPv4 address";
  // A link-local address needs an interface, which a dest cannot name: the kernel refuses one that is not the director's own.
  if (role === "dest" && /^fe[89ab][0-9a-f]:/.test(address))
    return "cannot be an IPv6 link-local address (fe80::/10): the kernel refuses link-local real servers (EINVAL); use a global or unique-local address";
  return undefined;
}

const ipAddress = (what: string, role: "vip" | "dest") =>
  z.string({ error: rule(`${what} must be an IP address`) }).transform((s, ctx) => {
    const ip = parseIp(s.trim());
    if (!ip) {
      ctx.addIssue({ code: "custom", message: `${what} must be an IPv4 or IPv6 address, not ${JSON.stringify(s)} (no host names)` });
      return z.NEVER;
    }
    const problem = unicastProblem(ip.family, ip.address, role);
    if (problem) {
      ctx.addIssue({ code: "custom", message: `${what} ${problem}` });
      return z.NEVER;
    }
    return ip.address;
  });

const int = (what: string, min: number, max: number) =>
  z
    .number({ error: rule(`${what} must be an integer ${min}..${max}`) })
    .int({ error: `${what} must be an integer ${min}..${max}` })
    .min(min, { error: `${what} must be an integer ${min}..${max}` })
    .max(max, { error: `${what} must be an integer ${min}..${max}` });

const bool = (what: string) => z.boolean({ error: `${what} must be true or false` });

const oneOf = <const T extends readonly [string, ...string[]]>(what: string, values: T) =>
  z.enum(values, { error: rule(`${what} must be one of ${values.map((v) => JSON.stringify(v)).join(", ")}`) });

const nonEmpty = (what: string) =>
  z.string({ error: rule(`${what} must be a string`) }).refine((s) => s.trim() !== "", { error: `${what} must not be empty` });

export const FAMILIES = ["ipv4", "ipv6"] as const;
export const PROTOCOLS = ["tcp", "udp", "sctp"] as const;
export const SCHEDULERS = ["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"] as const;
export type Scheduler = (typeof SCHEDULERS)[number];
export const SCHEDULER_FLAGS = ["sh-fallback", "sh-port", "mh-fallback", "mh-port", "flag-1", "flag-2", "flag-3"] as const;
export const FORWARDING = ["nat", "dr", "tunnel"] as const;
export type UserForwarding = (typeof FORWARDING)[number];
export const TUNNEL_TYPES = ["ipip", "gue", "gre"] as const;
export const TUNNEL_CHECKSUMS = ["nocsum", "csum", "remcsum"] as const;

export const DEFAULTS = {
  sshPort: 22,
  sshUser: "root",
  connectTimeoutSeconds: 20,
  operationTimeoutSeconds: 60,
  protocol: "tcp" as TransportProtocol,
  fwmarkFamily: "ipv4" as Family,
  scheduler: "wlc" as Scheduler,
  persistenceTimeout: 360,
  netmask: { ipv4: "255.255.255.255", ipv6: "128" } as Record<Family, string>,
  forwarding: "nat" as UserForwarding,
  weight: 1,
  drainTimeoutSeconds: 300,
} as const;

const MAX_THRESHOLD = 2147483647; // INT_MAX: the kernel compares thresholds as signed ints

// ---------------------------------------------------------------------------------------------------------------------
// Directors (SSH)

const HOSTNAME = /^(?=.{1,253}\.?$)[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?)*\.?$/;

/**
 * Why a name that passes HOSTNAME (trailing dot removed) cannot be used, or undefined. A DNS name never ends in an
 * all-numeric label (RFC 1123 §2.1, RFC 3696 §2), so such a host is an IPv4 address in a form inet_aton reads, and
 * getaddrinfo (hence ssh) uses inet_aton: "010.0.0.1" is 8.0.0.1, "10.1" and "0x0a.0.0.1" are 10.0.0.1. Only plain
 * dotted decimal (net.isIPv4, which refuses leading zeros) means what it seems to.
 */
function numericHostProblem(name: string): string | undefined {
  if (!/^(?:\d+|0x[0-9a-f]*)$/.test(name.slice(name.lastIndexOf(".") + 1))) return undefined;
  if (net.isIPv4(name)) return `host ${name}. is an IPv4 address with a trailing dot: write ${name}`;
  const read = inetAtonReading(name);
  if (read === undefined)
    return `host ${JSON.stringify(name)} cannot be a host name (no DNS name ends in a numeric label) and is not an IPv4 address: write a host name or a dotted-decimal IPv4 address`;
  return `host ${JSON.stringify(name)} is an ambiguous IPv4 address: inet_aton, and so getaddrinfo and ssh, reads it as ${read} (leading 0 = octal, 0x = hex, fewer than four parts = the last fills the remaining bytes): write four decimal numbers without leading zeros, e.g. ${read} if that is the address meant`;
}

/** The dotted-decimal address inet_aton reads `name` as, or undefined when it reads none. */
function inetAtonReading(name: string): string | undefined {
  try {
    const read = new URL(`http://${name}/`).hostname; // the WHATWG host parser reads numeric hosts as inet_aton does
    return net.isIPv4(read) ? read : undefined;
  } catch {
    return undefined;
  }
}

const sshHost = z.string({ error: rule("host must be a host name or IP address") }).transform((raw, ctx) => {
  let s = raw.trim().toLowerCase();
  if (s.startsWith("[") && s.endsWith("]")) s = s.slice(1, -1); // "[2001:db8::5]" as people paste it
  const ip = parseIp(s);
  if (ip) return ip.address;
  if (!HOSTNAME.test(s)) {
    ctx.addIssue({ code: "custom", message: `host must be a host name or IP address, not ${JSON.stringify(raw)}` });
    return z.NEVER;
  }
  // "lb1.example." is "lb1.example": one spelling, so directorKey() sees one director (and the duplicate rule fires).
  const name = s.endsWith(".") ? s.slice(0, -1) : s;
  const problem = numericHostProblem(name);
  if (problem) {
    ctx.addIssue({ code: "custom", message: problem });
    return z.NEVER;
  }
  return name;
});

// A user name is one token: " root" would also turn the sudo default on (it is not "root"). Not echoed: it may be a
// credential pasted into the wrong field.
const sshUser = z.string({ error: rule("user must be a string") }).superRefine((s, ctx) => {
  if (s === "") ctx.addIssue({ code: "custom", message: "user must not be empty" });
  else if (/[\s\p{Cc}]/u.test(s))
    ctx.addIssue({ code: "custom", message: 'user must not contain spaces, line breaks or control characters (a user name is one word, like "ops")' });
});

const KEY_TYPES = [
  "ssh-ed25519",
  "ssh-rsa",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "sk-ssh-ed25519@openssh.com",
  "sk-ecdsa-sha2-nistp256@openssh.com",
  "ssh-dss",
];

/** Parse an OpenSSH public key line ("type base64 [comment]") into "type base64", or say what is wrong with it. */
export function parseOpenSshPublicKey(line: string): { key: string } | { error: string } {
  const tokens = line.trim().split(/\s+/);
  const [type, b64] = tokens;
  if (/[\r\n]/.test(line.trim())) return { error: "hostKey must be a single public key line; for several keys use knownHosts" };
  if (!KEY_TYPES.includes(type ?? "")) {
    if (KEY_TYPES.includes(tokens[1] ?? ""))
      return { error: "hostKey looks like a known_hosts line (it starts with host names): keep only the key part, or use knownHosts" };
    return { error: `hostKey must be an OpenSSH public key line like "ssh-ed25519 AAAA… comment" (key types: ${KEY_TYPES.join(", ")})` };
  }
  if (!b64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0)
    return { error: `hostKey: the key data after "${type}" is not valid base64` };
  // The blob starts with the key type as an SSH string (uint32 length + bytes); it must repeat the declared type.
  const blob = Buffer.from(b64, "base64");
  const len = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
  const inner = len >= 0 && 4 + len <= blob.length ? blob.subarray(4, 4 + len).toString("latin1") : undefined;
  if (inner !== type) return { error: `hostKey: the key data is not a ${type} key (it encodes ${inner ? JSON.stringify(inner) : "garbage"})` };
  return { key: `${type} ${b64}` };
}

/** Fields people fill with private key text by mistake: what belongs there instead, and whether a line break gives it away. */
const KEY_TEXT_FIELDS = {
  host: { expected: "a host name", hint: "", oneLine: true },
  privateKeyPath: { expected: "a path", hint: ", or the path of the key file", oneLine: true },
  agent: { expected: "the path of an agent socket", hint: "", oneLine: true },
  hostKey: { expected: "a public key", hint: ", and the director's public host key line (ssh-keyscan) as hostKey", oneLine: false },
  knownHosts: { expected: "known_hosts text or a path", hint: ", and the director's public host keys as knownHosts", oneLine: false },
} as const;

/**
 * `schema`, after refusing private key text in `field` (issue 8 item 4). Such a value is a secret in the wrong place, so
 * it is never echoed, here or later (a "cannot read <path>" error would print the key).
 */
function noKeyText<T extends z.ZodType>(field: keyof typeof KEY_TEXT_FIELDS, schema: T) {
  const f = KEY_TEXT_FIELDS[field];
  return z
    .unknown()
    .superRefine((v, ctx) => {
      if (typeof v !== "string") return;
      if (/-----BEGIN|PRIVATE KEY|PuTTY-User-Key-File/.test(v) || (f.oneLine && /[\r\n]/.test(v)))
        ctx.addIssue({
          code: "custom",
          message: `${field} looks like private key text, not ${f.expected}: pass the key text as privateKey (as a secret)${f.hint}`,
        });
    })
    .pipe(schema);
}

const hostKey = z.string({ error: "hostKey must be an OpenSSH public key line" }).transform((s, ctx) => {
  const r = parseOpenSshPublicKey(s);
  if ("error" in r) {
    ctx.addIssue({ code: "custom", message: r.error });
    return z.NEVER;
  }
  return r.key; // comment dropped: a comment change is not a key change
});

// Never echo the value: it is a secret.
const privateKey = z.string({ error: "privateKey must be the private key text" }).refine(
  (s) => /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(s) || s.trimStart().startsWith("PuTTY-User-Key-File-"),
  { error: 'privateKey must be the private key text ("-----BEGIN … PRIVATE KEY-----"); for a key file use privateKeyPath' },
);

const agent = z.union([z.boolean(), z.string().refine((s) => s.trim() !== "")], {
  error: "agent must be true (use $SSH_AUTH_SOCK), false, or the path of an agent socket",
});

// "" is not "not set": it counts as authentication and is tried as an empty password. No key is encrypted with an empty
// passphrase (ssh-keygen -N "" writes an unencrypted key), so an empty passphrase is always a mistake too.
const secretText = (what: string, unset: string) =>
  z.string({ error: `${what} must be a string` }).refine((s) => s !== "", { error: `${what} must not be empty; ${unset}` });

function endpointShape() {
  return {
    host: u(noKeyText("host", sshHost)),
    port: u(int("port", 1, 65535)).default(DEFAULTS.sshPort),
    user: u(sshUser).default(DEFAULTS.sshUser),
    privateKey: u(privateKey).optional(),
    privateKeyPath: u(noKeyText("privateKeyPath", nonEmpty("privateKeyPath"))).optional(),
    privateKeyPassphrase: u(secretText("privateKeyPassphrase", "leave it out for an unencrypted key")).optional(),
    password: u(secretText("password", "leave it out to not use password authentication")).optional(),
    agent: u(noKeyText("agent", agent)).optional(),
    hostKey: u(noKeyText("hostKey", hostKey)).optional(),
    knownHosts: u(noKeyText("knownHosts", nonEmpty("knownHosts"))).optional(),
    insecureIgnoreHostKey: u(bool("insecureIgnoreHostKey")).optional(),
    connectTimeoutSeconds: u(int("connectTimeoutSeconds", 1, 3600)).default(DEFAULTS.connectTimeoutSeconds),
    jumpHost: u(z.lazy(() => sshEndpointSchema)).optional(),
  };
}

type EndpointFields = Partial<Record<keyof SshEndpoint, unknown>>;

/** Rules that need several fields of one SSH hop. */
function endpointRules(e: EndpointFields, ctx: z.RefinementCtx) {
  const auth = [e.privateKey, e.privateKeyPath, e.password, e.agent];
  const hasAuth = (v: unknown) => v !== undefined && v !== false;
  if (!auth.some(isUnknown) && !auth.some(hasAuth))
    ctx.addIssue({
      code: "custom",
      path: [],
      message: "no SSH authentication: set privateKey, privateKeyPath, password or agent",
    });
  const policy = [e.hostKey, e.knownHosts, e.insecureIgnoreHostKey];
  if (!policy.some(isUnknown)) {
    const set = (["hostKey", "knownHosts", "insecureIgnoreHostKey"] as const).filter((k) => e[k] !== undefined && e[k] !== false);
    if (set.length === 0)
      ctx.addIssue({
        code: "custom",
        path: ["hostKey"],
        message: "no host key policy: pin hostKey, or give knownHosts, or set insecureIgnoreHostKey: true (unknown host keys are refused)",
      });
    else if (set.length > 1)
      ctx.addIssue({
        code: "custom",
        path: [set[1]!],
        message: `set only one of hostKey, knownHosts, insecureIgnoreHostKey (got ${set.join(" and ")})`,
      });
  }
  if (e.privateKeyPassphrase !== undefined && e.privateKey === undefined && e.privateKeyPath === undefined)
    ctx.addIssue({
      code: "custom",
      path: ["privateKeyPassphrase"],
      message: "privateKeyPassphrase is only used with privateKey or privateKeyPath",
    });
}

export const sshEndpointSchema: z.ZodType<Checked<SshEndpoint>, unknown> = z
  .strictObject(endpointShape())
  .superRefine(endpointRules) as z.ZodType<Checked<SshEndpoint>, unknown>;

export const directorSchema = z
  .strictObject({
    ...endpointShape(),
    sudo: u(bool("sudo")).optional(),
    operationTimeoutSeconds: u(int("operationTimeoutSeconds", 1, 3600)).default(DEFAULTS.operationTimeoutSeconds),
  })
  .superRefine(endpointRules)
  .transform((d) => ({
    ...d,
    // Non-root users reach netlink through `sudo -n`; root needs no sudo.
    sudo: d.sudo ?? (isUnknown(d.user) ? UNKNOWN : d.user !== "root"),
  }));

export const directorsSchema = z
  .array(u(directorSchema), { error: rule("directors must be a list of directors") })
  .min(1, { error: "directors must list at least one director" })
  .superRefine((ds, ctx) => {
    const seen = new Map<string, number>();
    ds.forEach((d, i) => {
      if (isUnknown(d) || isUnknown(d.host) || isUnknown(d.port)) return;
      const key = directorKey({ host: d.host, port: d.port });
      const first = seen.get(key);
      if (first !== undefined)
        ctx.addIssue({ code: "custom", path: [i, "host"], message: `director ${key} is listed twice (also directors[${first}])` });
      else seen.set(key, i);
    });
  });

// ---------------------------------------------------------------------------------------------------------------------
// VirtualService

const persistenceSchema = z.strictObject({
  timeout: u(int("timeout", 1, 2678400)).default(DEFAULTS.persistenceTimeout),
  // Form depends on the family (dotted mask / prefix), checked in the service rules.
  netmask: u(z.union([z.string(), z.number()], { error: "netmask must be a string (IPv4 mask) or a number (IPv6 prefix)" })).optional(),
  engine: u(z.literal("sip", { error: 'engine must be "sip" (the only persistence engine)' })).optional(),
});

/** The scheduler-flag bit each name sets, and the name ipvsadm prints for that bit under each scheduler. */
const FLAG_BIT: Record<SchedulerFlag, 1 | 2 | 3> = {
  "sh-fallback": 1, "mh-fallback": 1, "flag-1": 1,
  "sh-port": 2, "mh-port": 2, "flag-2": 2,
  "flag-3": 3,
};
function canonicalFlag(bit: 1 | 2 | 3, scheduler: string): SchedulerFlag {
  if (bit !== 3 && (scheduler === "sh" || scheduler === "mh")) return `${scheduler}-${bit === 1 ? "fallback" : "port"}`;
  return `flag-${bit}`;
}

/** IPv4 netmask "a.b.c.d" with contiguous ones and at least one bit set, or undefined. */
function contiguousMask(s: string): boolean {
  if (!net.isIPv4(s)) return false;
  const n = s.split(".").reduce((acc, o) => acc * 256 + Number(o), 0);
  const inv = 0xffffffff - n;
  return n !== 0 && (inv & (inv + 1)) === 0; // ~mask + 1 must be a power of two
}

function v6Prefix(m: string | number): number | undefined {
  const n = typeof m === "number" ? m : /^\/?\d{1,3}$/.test(m.trim()) ? Number(m.trim().replace("/", "")) : NaN;
  return Number.isInteger(n) && n >= 1 && n <= 128 ? n : undefined;
}

const drainSchema = z.strictObject({
  timeoutSeconds: u(int("timeoutSeconds", 0, 86400)).default(DEFAULTS.drainTimeoutSeconds),
});

const vsObject = z.strictObject({
  directors: u(directorsSchema),
  family: u(oneOf("family", FAMILIES)).optional(),
  protocol: u(oneOf("protocol", PROTOCOLS)).optional(),
  address: u(ipAddress("address", "vip")).optional(),
  port: u(int("port", 0, 65535)).optional(),
  fwmark: u(int("fwmark", 1, 4294967295)).optional(),
  scheduler: u(oneOf("scheduler", SCHEDULERS)).default(DEFAULTS.scheduler),
  schedulerFlags: u(z.array(u(oneOf("schedulerFlags", SCHEDULER_FLAGS)), { error: "schedulerFlags must be a list" })).default([]),
  persistence: u(persistenceSchema).optional(),
  onePacket: u(bool("onePacket")).default(false),
  drain: u(drainSchema).optional(),
  adopt: u(bool("adopt")).default(false),
});
type VsParsed = z.output<typeof vsObject>;
/** The input property names of a VirtualService (old outputs may carry more, e.g. read-back data). */
export const VIRTUAL_SERVICE_KEYS = Object.keys(vsObject.shape) as (keyof VsParsed)[];

/** Cross-field rules of a virtual service; each one skips itself while one of its fields is unknown. */
function virtualServiceRules(v: VsParsed, ctx: z.RefinementCtx) {
  const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: "custom", path, message });
  const isFwmark = v.fwmark !== undefined;
  const persistence = v.persistence;

  if (isFwmark) {
    for (const k of ["protocol", "address", "port"] as const)
      if (v[k] !== undefined) issue([k], `${k} cannot be combined with fwmark: a service is either protocol + address + port, or fwmark`);
  } else {
    if (v.address === undefined) issue(["address"], "set address (with protocol and port) or fwmark: a service needs an identity");
    else if (v.port === undefined) issue(["port"], "port is required for an address service (0 only with persistence)");
    const problem = familyProblem(v, "");
    if (problem) issue(["family"], problem);
  }
  // ipvsadm: "Zero port specified for non-persistent service".
  if (v.port === 0 && persistence === undefined)
    issue(["port"], "port 0 is only allowed for persistent services (ipvsadm rule)");

  const protocol = isFwmark ? undefined : (v.protocol ?? DEFAULTS.protocol);
  if (v.onePacket === true && protocol !== undefined && !isUnknown(protocol) && protocol !== "udp")
    issue(["onePacket"], `onePacket is only supported for UDP or fwmark services, not ${protocol} (ipvsadm rule)`);

  if (persistence !== undefined && !isUnknown(persistence)) {
    // The SIP engine reads Call-IDs from UDP payloads; fwmark services may carry UDP, so they are allowed.
    if (persistence.engine === "sip" && protocol !== undefined && !isUnknown(protocol) && protocol !== "udp")
      issue(["persistence", "engine"], `persistence engine "sip" only works for UDP (or fwmark) services, not ${protocol}`);
    const family = serviceFamily(v);
    const m = persistence.netmask;
    if (m !== undefined && !isUnknown(m) && family !== undefined && !isUnknown(family)) {
      if (family === "ipv4" && !(typeof m === "string" && contiguousMask(m.trim())))
        issue(["persistence", "netmask"], `netmask must be a contiguous IPv4 mask like "255.255.255.0", not ${JSON.stringify(m)}`);
      if (family === "ipv6" && v6Prefix(m) === undefined)
        issue(["persistence", "netmask"], `netmask of an IPv6 service must be a prefix length 1..128 (like 64), not ${JSON.stringify(m)}`);
    }
  }

  const flags = v.schedulerFlags;
  if (!isUnknown(flags) && !isUnknown(v.scheduler)) {
    const seen = new Map<number, string>();
    flags.forEach((f, i) => {
      if (isUnknown(f)) return;
      const family = f.startsWith("sh-") ? "sh" : f.startsWith("mh-") ? "mh" : undefined;
      if (family && v.scheduler !== family)
        issue(["schedulerFlags", i], `scheduler flag ${f} only applies to the ${family} scheduler, not ${v.scheduler} (ipvsadm rule)`);
      const bit = FLAG_BIT[f];
      const other = seen.get(bit);
      if (other !== undefined)
        issue(["schedulerFlags", i], other === f ? `scheduler flag ${f} is listed twice` : `scheduler flags ${other} and ${f} set the same kernel flag`);
      else seen.set(bit, f);
    });
  }
}

/** A service whose family disagrees with its address (`prefix` names a service nested in another resource). */
function familyProblem(v: { family?: Family | Unknown; address?: string | Unknown }, prefix: string): string | undefined {
  if (v.address === undefined || isUnknown(v.address) || v.family === undefined || isUnknown(v.family)) return undefined;
  const family = parseIp(v.address)!.family;
  return family === v.family ? undefined : `${prefix}family is ${v.family} but ${prefix}address ${v.address} is ${family}`;
}

function serviceFamily(v: { family?: Family | Unknown; address?: string | Unknown; fwmark?: number | Unknown }): Family | Unknown | undefined {
  if (v.address !== undefined) return isUnknown(v.address) ? UNKNOWN : parseIp(v.address)!.family;
  if (v.fwmark !== undefined) return v.family ?? DEFAULTS.fwmarkFamily;
  return v.family;
}

export const virtualServiceSchema = vsObject.superRefine(virtualServiceRules).transform((v) => {
  const isFwmark = v.fwmark !== undefined;
  const family = serviceFamily(v);
  const scheduler = v.scheduler;
  const p = v.persistence;
  let persistence: { timeout: number | Unknown; netmask: string | Unknown; engine?: "sip" | Unknown } | Unknown | undefined =
    isUnknown(p) ? UNKNOWN : undefined;
  if (p !== undefined && !isUnknown(p)) {
    const m = p.netmask;
    let netmask: string | Unknown;
    // The default depends on the family: while that is unknown, so is the default.
    if (isUnknown(m)) netmask = UNKNOWN;
    else if (family === undefined || isUnknown(family)) netmask = m === undefined ? UNKNOWN : String(m);
    else if (m === undefined) netmask = DEFAULTS.netmask[family];
    else netmask = family === "ipv4" ? String(m).trim() : String(v6Prefix(m)); // v6: the prefix as the helper writes it
    persistence = { timeout: p.timeout, netmask, ...(p.engine !== undefined ? { engine: p.engine } : {}) };
  }
  // Flags in kernel-bit order, named as ipvsadm prints them for this scheduler (flag-1 on sh = sh-fallback).
  let schedulerFlags = v.schedulerFlags;
  if (!isUnknown(schedulerFlags) && !isUnknown(scheduler) && !schedulerFlags.some(isUnknown))
    schedulerFlags = (schedulerFlags as SchedulerFlag[])
      .map((f) => FLAG_BIT[f])
      .sort()
      .map((bit) => canonicalFlag(bit, scheduler));
  return {
    directors: v.directors,
    family,
    ...(isFwmark
      ? { fwmark: v.fwmark }
      : { protocol: v.protocol ?? DEFAULTS.protocol, address: v.address, port: v.port }),
    scheduler,
    schedulerFlags,
    ...(persistence !== undefined ? { persistence } : {}),
    onePacket: v.onePacket,
    ...(v.drain !== undefined ? { drain: v.drain } : {}),
    adopt: v.adopt,
  };
});

// ---------------------------------------------------------------------------------------------------------------------
// RealServer

/**
 * The service a real server belongs to, as the RealServer resource passes it: the VirtualService's resolved `directors`
 * and its identity (`family` + `protocol`/`address`/`port`, or `family` + `fwmark`), all taken from its outputs.
 * These come from another resource, so at preview any of them may be unknown or even absent: check() lets that
 * pass; parseRealServer() requires them. `RealServerInputs` is the whole input shape the RealServer resource sends.
 */
export interface RealServerInputs {
  /** From the VirtualService's outputs. */
  service: {
    directors: unknown[];
    family: Family;
    protocol?: TransportProtocol;
    address?: string;
    port?: number;
    fwmark?: number;
  };
  address: string;
  port?: number;
  forwarding?: UserForwarding;
  weight?: number;
  upperThreshold?: number;
  lowerThreshold?: number;
  tunnel?: { type?: "ipip" | "gue" | "gre"; port?: number; checksum?: "nocsum" | "csum" | "remcsum" };
  drain?: { timeoutSeconds?: number };
  adopt?: boolean;
}

const serviceRefSchema = z.strictObject({
  directors: u(directorsSchema).optional(),
  family: u(oneOf("family", FAMILIES)).optional(),
  protocol: u(oneOf("protocol", PROTOCOLS)).optional(),
  address: u(ipAddress("address", "vip")).optional(),
  port: u(int("port", 0, 65535)).optional(),
  fwmark: u(int("fwmark", 1, 4294967295)).optional(),
});

const tunnelSchema = z
  .strictObject({
    type: u(oneOf("type", TUNNEL_TYPES)).default("ipip"),
    port: u(int("port", 1, 65535)).optional(),
    checksum: u(oneOf("checksum", TUNNEL_CHECKSUMS)).optional(),
  })
  .superRefine((t, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: "custom", path: [path], message });
    if (isUnknown(t.type)) return;
    // ipvsadm: ipip has neither port nor checksum options; gue needs a port; gre has no port and no remcsum.
    if (t.type !== "gue" && t.port !== undefined) issue("port", `port is only used by gue tunnels, not ${t.type}`);
    if (t.type === "gue" && t.port === undefined) issue("port", "port (1..65535) is required for gue tunnels");
    if (t.type === "ipip" && t.checksum !== undefined && t.checksum !== "nocsum")
      issue("checksum", `checksum ${t.checksum} is not available for ipip tunnels (only gue and gre)`);
    if (t.type === "gre" && t.checksum === "remcsum") issue("checksum", "checksum remcsum is only available for gue tunnels");
  })
  .transform((t) => ({ ...t, checksum: t.checksum ?? ("nocsum" as const) }));

const rsObject = z.strictObject({
  service: u(serviceRefSchema),
  address: u(ipAddress("address", "dest")),
  port: u(int("port", 0, 65535)).optional(),
  forwarding: u(oneOf("forwarding", FORWARDING)).default(DEFAULTS.forwarding),
  weight: u(int("weight", 0, 65535)).default(DEFAULTS.weight),
  upperThreshold: u(int("upperThreshold", 0, MAX_THRESHOLD)).default(0),
  lowerThreshold: u(int("lowerThreshold", 0, MAX_THRESHOLD)).default(0),
  tunnel: u(tunnelSchema).optional(),
  drain: u(drainSchema).optional(),
  adopt: u(bool("adopt")).default(false),
});
type RsParsed = z.output<typeof rsObject>;
/** The input property names of a RealServer. */
export const REAL_SERVER_KEYS = Object.keys(rsObject.shape) as (keyof RsParsed)[];

function realServerRules(r: RsParsed, ctx: z.RefinementCtx) {
  const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: "custom", path, message });
  const svc = isUnknown(r.service) ? undefined : r.service;
  const svcFamily = svc && serviceFamily(svc);
  const fwd = r.forwarding;

  if (svc && svc.fwmark !== undefined)
    for (const k of ["protocol", "address", "port"] as const)
      if (svc[k] !== undefined) issue(["service", k], `service.${k} cannot be combined with service.fwmark`);
  // Refused rather than letting serviceFamily() below silently prefer the address.
  const familyMismatch = svc && familyProblem(svc, "service.");
  if (familyMismatch) issue(["service", "family"], familyMismatch);

  if (!isUnknown(r.address) && svcFamily !== undefined && !isUnknown(svcFamily) && !isUnknown(fwd) && fwd !== "tunnel") {
    const family = parseIp(r.address)!.family;
    if (family !== svcFamily)
      issue(["address"], `address ${r.address} is ${family} but the service is ${svcFamily}: mixing families needs forwarding "tunnel"`);
  }

  // ipvsadm silently rewrites the port for dr/tunnel on address services; we refuse instead of surprising the user.
  if ((fwd === "dr" || fwd === "tunnel") && svc && svc.fwmark === undefined) {
    if (r.port !== undefined && !isUnknown(r.port) && svc.port !== undefined && !isUnknown(svc.port) && r.port !== svc.port)
      issue(["port"], `port must equal the service port (${svc.port}) with forwarding "${fwd}": the packet is not rewritten, so the real server sees the service port (omit port)`);
  }

  const up = r.upperThreshold, low = r.lowerThreshold;
  // The kernel refuses lower > upper even when upper is 0 (0 = no upper limit), so a lower threshold needs an upper one.
  if (!isUnknown(up) && !isUnknown(low) && low > up)
    issue(["lowerThreshold"], up === 0
      ? "lowerThreshold needs an upperThreshold: with upperThreshold 0 (no limit) lowerThreshold must be 0"
      : `lowerThreshold (${low}) must not be greater than upperThreshold (${up})`);

  if (r.tunnel !== undefined && !isUnknown(fwd) && fwd !== "tunnel")
    issue(["tunnel"], `tunnel options are only used with forwarding "tunnel", not "${fwd}"`);
}

export const realServerSchema = rsObject.superRefine(realServerRules).transform((r) => {
  const svc = r.service;
  let port = r.port;
  if (port === undefined && !isUnknown(svc)) {
    // Omitted port = the service port (ipvsadm); a fwmark service has no port, so 0 (= keep the packet's port).
    port = svc.fwmark !== undefined ? 0 : svc.port;
  }
  const tunnel = r.forwarding === "tunnel" ? (r.tunnel ?? { type: "ipip" as const, checksum: "nocsum" as const }) : r.tunnel;
  return {
    service: isUnknown(svc) ? svc : { ...svc, family: serviceFamily(svc) },
    address: r.address,
    ...(port !== undefined ? { port } : {}),
    forwarding: r.forwarding,
    weight: r.weight,
    upperThreshold: r.upperThreshold,
    lowerThreshold: r.lowerThreshold,
    ...(tunnel !== undefined ? { tunnel } : {}),
    ...(r.drain !== undefined ? { drain: r.drain } : {}),
    adopt: r.adopt,
  };
});

// ---------------------------------------------------------------------------------------------------------------------
// Normalised types (what create / update / read work with)

export type VirtualServiceChecked = z.output<typeof virtualServiceSchema>;
export type RealServerChecked = z.output<typeof realServerSchema>;

interface ServiceIdentityBase {
  family: Family;
}
/** A service's kernel identity plus the directors it lives on. */
export type ServiceIdentity = ServiceIdentityBase &
  ({ protocol: TransportProtocol; address: string; port: number; fwmark?: undefined } | { fwmark: number; protocol?: undefined; address?: undefined; port?: undefined });

export interface Persistence {
  /** Seconds, 1..2678400. */
  timeout: number;
  /** IPv4: dotted mask; IPv6: prefix length as a string ("128"). */
  netmask: string;
  engine?: "sip";
}

export type VirtualService = ServiceIdentity & {
  directors: Director[];
  scheduler: Scheduler;
  schedulerFlags: SchedulerFlag[];
  persistence?: Persistence;
  onePacket: boolean;
  /** Drain the service's real servers before it leaves a director. */
  drain?: { timeoutSeconds: number };
  adopt: boolean;
};

export interface TunnelOptions {
  type: "ipip" | "gue" | "gre";
  /** gue only. */
  port?: number;
  checksum: "nocsum" | "csum" | "remcsum";
}

/** The `service` input of a RealServer, fully known. */
export type ServiceRef = ServiceIdentity & { directors: Director[] };

export interface RealServer {
  service: ServiceRef;
  address: string;
  port: number;
  forwarding: UserForwarding;
  weight: number;
  upperThreshold: number;
  lowerThreshold: number;
  tunnel?: TunnelOptions;
  drain?: { timeoutSeconds: number };
  adopt: boolean;
}

// The hand-written types above must accept what the schemas produce once every value is known (compile-time check).
type Assert<T extends true> = T;
type Fits<A, B> = [A] extends [B] ? true : false;
export type _DirectorFits = Assert<Fits<Known<z.output<typeof directorSchema>>, Director>>;
// Identity fields are left out: their presence is guaranteed by the rules (refinements), which types cannot see.
type Identity = "family" | "protocol" | "address" | "port" | "fwmark";
export type _VirtualServiceFits = Assert<Fits<Omit<Known<VirtualServiceChecked>, Identity>, Omit<VirtualService, Identity>>>;
export type _RealServerFits = Assert<Fits<Omit<Known<RealServerChecked>, "service" | "port">, Omit<RealServer, "service" | "port">>>;

// ---------------------------------------------------------------------------------------------------------------------
// check / parse

export interface CheckFailure {
  property: string;
  reason: string;
}
export interface CheckResult<T> {
  inputs: T;
  failures: CheckFailure[];
}

/** Hints for properties people put at the wrong level. */
const MISPLACED: Record<string, string> = {
  netmask: "netmask belongs in persistence: a netmask is only meaningful for persistent services (ipvsadm rule)",
  timeout: "the persistence timeout belongs in persistence.timeout",
  engine: "the persistence engine belongs in persistence.engine: it is only meaningful for persistent services",
  tunnelType: "tunnel options belong in tunnel: { type, port, checksum }",
};

export function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, p) => (typeof p === "number" ? `${acc}[${p}]` : acc ? `${acc}.${String(p)}` : String(p)), "");
}

function toFailures(issues: readonly z.core.$ZodIssue[], prefix: readonly PropertyKey[] = []): CheckFailure[] {
  const out: CheckFailure[] = [];
  for (const iss of issues) {
    const path = [...prefix, ...iss.path];
    if (iss.code === "invalid_union") {
      // u(x) failed: the last branch is the real schema (the first is the UNKNOWN literal).
      out.push(...toFailures(iss.errors[iss.errors.length - 1] ?? [], path));
    } else if (iss.code === "unrecognized_keys") {
      for (const k of iss.keys)
        out.push({ property: formatPath([...path, k]), reason: MISPLACED[k] ?? `${k} is not a known property here (check the spelling)` });
    } else {
      out.push({ property: formatPath(path) || "(inputs)", reason: iss.message });
    }
  }
  return out;
}

/** null means "not set" (JS programs and the protobuf Struct use it); __provider is the plugin's, not ours. */
function prepare(news: unknown): unknown {
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(strip);
    if (v && typeof v === "object") {
      const o: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) if (x !== null && x !== undefined && k !== "__provider") o[k] = strip(x);
      return o;
    }
    return v;
  };
  return strip(news ?? {});
}

function check<S extends z.ZodType>(schema: S, news: unknown): CheckResult<z.output<S>> {
  const r = schema.safeParse(prepare(news));
  if (r.success) return { inputs: r.data, failures: [] };
  return { inputs: news as z.output<S>, failures: toFailures(r.error.issues) };
}

/** Validate and normalise VirtualService inputs (defaults filled, IPv6 compressed); the dynamic provider's check. */
export function checkVirtualService(_olds: unknown, news: unknown): CheckResult<VirtualServiceChecked> {
  return check(virtualServiceSchema, news);
}

/**
 * At preview, the VirtualService outputs it did not get as inputs are unknown: an address service's `fwmark`, a fwmark
 * service's protocol/address/port. A service is one or the other (VirtualService's check enforces it), so once one side
 * is known the other side is absent, not "unknown". Without this, check refused "service.address cannot be combined
 * with service.fwmark" for every real server of a service being created or updated, and diff saw an identity that "may
 * change" (a replacement in preview that up never does).
 */
function settleServiceUnknowns(props: unknown): unknown {
  if (!props || typeof props !== "object") return props;
  const svc = (props as Record<string, unknown>).service;
  if (!svc || typeof svc !== "object" || Array.isArray(svc)) return props;
  const s = { ...(svc as Record<string, unknown>) };
  const known = (v: unknown) => v !== undefined && v !== null && !isUnknown(v);
  if (known(s.address) && isUnknown(s.fwmark)) delete s.fwmark;
  if (known(s.fwmark)) for (const k of ["protocol", "address", "port"]) if (isUnknown(s[k])) delete s[k];
  return { ...(props as Record<string, unknown>), service: s };
}

/** Validate and normalise RealServer inputs (port defaulted from the service, …); the dynamic provider's check. */
export function checkRealServer(_olds: unknown, news: unknown): CheckResult<RealServerChecked> {
  return check(realServerSchema, settleServiceUnknowns(news));
}

/**
 * State written by older versions, in today's spelling, so that stacks they made can still be updated, refreshed and
 * destroyed after a rule tightened (new inputs never need this: check refuses them): an empty password or passphrase
 * meant "none", and a numeric host in another form ("10.1") is the address ssh connected to (its inet_aton reading).
 * Applied wherever state is parsed or compared, and a no-op on today's inputs.
 */
export function upgradeState(props: unknown): unknown {
  if (Array.isArray(props)) return props.map(upgradeState);
  if (!props || typeof props !== "object") return props;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(props)) {
    if ((k === "password" || k === "privateKeyPassphrase") && v === "") continue;
    out[k] = k === "host" && typeof v === "string" ? legacyHost(v) : upgradeState(v);
  }
  return out;
}

function legacyHost(host: string): string {
  const name = host.trim().toLowerCase().replace(/\.$/, "");
  return numericHostProblem(name) ? (inetAtonReading(name) ?? host) : host;
}

function unknownPaths(v: unknown, path: PropertyKey[] = []): string[] {
  if (isUnknown(v)) return [formatPath(path)];
  if (Array.isArray(v)) return v.flatMap((x, i) => unknownPaths(x, [...path, i]));
  if (v && typeof v === "object") return Object.entries(v).flatMap(([k, x]) => unknownPaths(x, [...path, k]));
  return [];
}

function parse<T>(what: string, r: CheckResult<unknown>, extra: CheckFailure[] = []): T {
  const failures = [...r.failures, ...(r.failures.length ? [] : extra)];
  for (const p of r.failures.length ? [] : unknownPaths(r.inputs)) failures.push({ property: p, reason: "is not known yet" });
  if (failures.length) throw new Error(`invalid ${what}: ${failures.map((f) => `${f.property}: ${f.reason}`).join("; ")}`);
  return r.inputs as T;
}

/** Fully known, normalised VirtualService (for create/update/read); throws with every problem listed. */
export function parseVirtualService(inputs: unknown): VirtualService {
  return parse("VirtualService inputs", checkVirtualService(undefined, upgradeState(inputs)));
}

/** Fully known, normalised RealServer (for create/update/read); throws with every problem listed. */
export function parseRealServer(inputs: unknown): RealServer {
  const r = checkRealServer(undefined, upgradeState(inputs));
  const extra: CheckFailure[] = [];
  const svc = r.inputs.service;
  if (!isUnknown(svc) && svc) {
    if (svc.directors === undefined) extra.push({ property: "service.directors", reason: "is required (the VirtualService's directors)" });
    if (svc.fwmark === undefined && (svc.address === undefined || svc.port === undefined || svc.protocol === undefined))
      extra.push({ property: "service", reason: "needs fwmark, or protocol + address + port (the VirtualService's identity)" });
  }
  return parse("RealServer inputs", r, extra);
}

// ---------------------------------------------------------------------------------------------------------------------
// Mapping to the helper protocol (PROTOCOL.md): the one place that knows how user fields become helper fields.

export function serviceKey(s: ServiceIdentity): ServiceKey {
  return s.fwmark !== undefined
    ? { family: s.family, fwmark: s.fwmark }
    : { family: s.family, protocol: s.protocol, address: s.address, port: s.port };
}

/** The complete desired settings (the helper's SET must never fall back to "keep current" for a field we own). */
export function serviceSettings(vs: VirtualService): Required<ServiceSettings> {
  return {
    scheduler: vs.scheduler,
    schedulerFlags: [...vs.schedulerFlags],
    persistence: vs.persistence ? { timeout: vs.persistence.timeout, netmask: vs.persistence.netmask } : null,
    persistenceEngine: vs.persistence?.engine ?? "",
    onePacket: vs.onePacket,
  };
}

export function destKey(rs: Pick<RealServer, "address" | "port">): DestKey {
  return { address: rs.address, port: rs.port };
}

/** Complete dest settings; tunnel null for non-tunnel forwarding so a SET clears an old tunnel. */
export function destSettings(rs: RealServer): Required<DestSettings> {
  const t = rs.tunnel;
  return {
    forwarding: rs.forwarding,
    weight: rs.weight,
    upperThreshold: rs.upperThreshold,
    lowerThreshold: rs.lowerThreshold,
    tunnel: rs.forwarding === "tunnel" && t ? { type: t.type, port: t.port ?? 0, checksum: t.checksum } : null,
  };
}
