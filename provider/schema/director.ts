// Director (SSH connection) rules: host, user, credentials, host key policy, timeouts, jump hosts, the list of directors,
// and how state written by older versions is read in today's spelling.
import * as net from "node:net";
import { z } from "zod";
import { directorKey, type SshEndpoint } from "../director";
import { parseOpenSshPublicKey } from "../session/hostKeys";
import { isUnknown, rule, u, UNKNOWN, type Checked } from "./unknown";
import { bool, DEFAULTS, int, nonEmpty, parseIp } from "./values";

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
