// Health checks (issue 27): the `healthCheck` input a VirtualService (default for its real servers), a RealServer, a
// RealServerPool (default for its members) and each pool member take, its rules and defaults, the one inheritance
// rule (resolveHealthCheck) and the complete object ensureDest sends (healthCheckWire, PROTOCOL.md "Health checks").
// The helper re-checks every field; the rules here are its rules, so a bad check is refused at preview instead.
import { z } from "zod";
import type { HealthCheck } from "../protocol";
import type { OneOf } from "./fields";
import { isUnknown, rule, u, UNKNOWN, type Known, type Unknown } from "./unknown";
import { int, oneOf } from "./values";

export const HEALTH_CHECK_TYPES = ["tcp", "http", "https", "dns", "none"] as const;
export const HEALTH_ON_FAILURE = ["quiesce", "remove"] as const;
export const HTTP_METHODS = ["GET", "HEAD"] as const;
export const DNS_TYPES = ["A", "AAAA", "SOA", "NS", "MX", "TXT", "SRV"] as const;
export const DNS_TRANSPORTS = ["udp", "tcp"] as const;

export const HEALTH_DEFAULTS = {
  intervalSeconds: 5,
  /** Or half the interval when that is less: a probe must end before the next one starts. */
  timeoutSeconds: 2,
  rise: 2,
  fall: 3,
  onFailure: "quiesce",
  http: { path: "/", method: "GET", expectStatus: "200-399" },
  dns: { type: "A", transport: "udp" },
} as const;

/** The helper's bounds (PROTOCOL.md): intervals in seconds, path/host/expectBody in bytes, a DNS name's length. */
export const INTERVAL_RANGE = [1, 3600] as const;
export const MAX_HTTP_FIELD = 1024;
const MAX_DNS_NAME = 253;

/** An HTTP(S) check's request and what a healthy answer looks like. */
export interface HttpCheckInputs {
  /** Request path: starts with "/", no whitespace, at most 1024 bytes. Default "/". */
  path?: string;
  /** "GET" | "HEAD". Default "GET". */
  method?: OneOf<(typeof HTTP_METHODS)[number]>;
  /** The Host header and, for https, the TLS SNI. Default: the real server's address:port (no SNI). */
  host?: string;
  /** Healthy status codes: codes and ranges of 100..599, e.g. "200,301-302". Default "200-399". */
  expectStatus?: string;
  /** Healthy only when the first 64 KiB of the body contain this text (GET only, at most 1024 bytes). Default: any body. */
  expectBody?: string;
}

/** A DNS check's question; healthy = an answer with RCODE NOERROR. */
export interface DnsCheckInputs {
  /** The name asked for, e.g. "example.org." (1..253 characters). Required. */
  name: string;
  /** "A" | "AAAA" | "SOA" | "NS" | "MX" | "TXT" | "SRV". Default "A". */
  type?: OneOf<(typeof DNS_TYPES)[number]>;
  /** "udp" | "tcp". Default "udp". */
  transport?: OneOf<(typeof DNS_TRANSPORTS)[number]>;
}

/**
 * A health check, run by the checker on each director (`ipvs-helper health`) against the real server's own address.
 * Given on a VirtualService it is the default for all its real servers, on a RealServerPool for its members; a
 * RealServer's or a member's own check wins over the pool's, which wins over the service's (the whole object, not
 * field by field). `type: "none"` switches an inherited check off.
 */
export interface HealthCheckInputs {
  /** "tcp" (a connection accepted) | "http" | "https" (no certificate verification) | "dns" | "none". Required. */
  type: OneOf<(typeof HEALTH_CHECK_TYPES)[number]>;
  /** 1..65535. Default: the real server's port (required where that is 0: a fwmark service's real servers). */
  port?: number;
  /** Seconds between probes, 1..3600 (fractions allowed). Default 5. */
  intervalSeconds?: number;
  /** Seconds a probe may take, more than 0 and less than intervalSeconds. Default 2, or half the interval when less. */
  timeoutSeconds?: number;
  /** Consecutive successes before a down real server is put back, 1..100. Default 2. */
  rise?: number;
  /** Consecutive failures before a real server is taken out, 1..100. Default 3. */
  fall?: number;
  /** Only with type "http" or "https". Default { path: "/", method: "GET", expectStatus: "200-399" }. */
  http?: HttpCheckInputs;
  /** Required with type "dns" (its name), only there. */
  dns?: DnsCheckInputs;
  /**
   * "quiesce": weight 0, open connections finish; "remove": the real server is deleted, and added back with its
   * declared settings on recovery. Default "quiesce".
   */
  onFailure?: OneOf<(typeof HEALTH_ON_FAILURE)[number]>;
}

const bytes = (s: string) => Buffer.byteLength(s);

/** The helper's rule for expectStatus ("200,301-302"): the reason it is not one, or undefined. */
export function statusRangesProblem(s: string): string | undefined {
  for (const part of s.split(",")) {
    const m = /^\s*(\d+)(?:-(\d+))?\s*$/.exec(part);
    const lo = m ? Number(m[1]) : NaN;
    const hi = m?.[2] !== undefined ? Number(m[2]) : lo;
    if (!m || lo < 100 || hi > 599 || lo > hi)
      return `expectStatus must be status codes and ranges of 100..599 separated by commas, such as "200,301-302" (${JSON.stringify(part)} is not one)`;
  }
  return undefined;
}

const text = (what: string, problem: (s: string) => string | undefined) =>
  z.string({ error: rule(`${what} must be a string`) }).superRefine((s, ctx) => {
    const p = problem(s);
    if (p) ctx.addIssue({ code: "custom", message: p });
  });

const httpSchema = z.strictObject({
  path: u(
    text("path", (s) =>
      !s.startsWith("/") || /\s/.test(s) || bytes(s) > MAX_HTTP_FIELD
        ? `path ${JSON.stringify(s.slice(0, 80))} must start with "/", hold no whitespace and be at most ${MAX_HTTP_FIELD} bytes`
        : undefined,
    ),
  ).default(HEALTH_DEFAULTS.http.path),
  method: u(oneOf("method", HTTP_METHODS)).default(HEALTH_DEFAULTS.http.method),
  host: u(
    text("host", (s) =>
      s === "" || /[\s/]/.test(s) || bytes(s) > MAX_HTTP_FIELD
        ? `host ${JSON.stringify(s.slice(0, 80))} must be a host name (not empty, no whitespace or "/", at most ${MAX_HTTP_FIELD} bytes)`
        : undefined,
    ),
  ).optional(),
  expectStatus: u(text("expectStatus", statusRangesProblem)).default(HEALTH_DEFAULTS.http.expectStatus),
  expectBody: u(text("expectBody", (s) => (bytes(s) > MAX_HTTP_FIELD ? `expectBody must be at most ${MAX_HTTP_FIELD} bytes, not ${bytes(s)}` : undefined))).optional(),
});

const dnsSchema = z.strictObject({
  name: u(
    text("name", (s) =>
      s === "" || s.length > MAX_DNS_NAME || /\s/.test(s) ? `name ${JSON.stringify(s.slice(0, 80))} must be a domain name of 1..${MAX_DNS_NAME} characters without whitespace` : undefined,
    ),
  ),
  type: u(oneOf("type", DNS_TYPES)).default(HEALTH_DEFAULTS.dns.type),
  transport: u(oneOf("transport", DNS_TRANSPORTS)).default(HEALTH_DEFAULTS.dns.transport),
});

const seconds = (what: string, min: number, max: number) =>
  z
    .number({ error: rule(`${what} must be a number of seconds ${min}..${max}`) })
    .refine((n) => Number.isFinite(n) && n >= min && n <= max, { error: `${what} must be a number of seconds ${min}..${max}` });

const positiveSeconds = (what: string) =>
  z
    .number({ error: rule(`${what} must be a number of seconds greater than 0`) })
    // The helper's own floor: a millisecond.
    .refine((n) => Number.isFinite(n) && n >= 0.001, { error: `${what} must be a number of seconds greater than 0 (at least 0.001)` });

const healthCheckObject = z.strictObject({
  type: u(oneOf("type", HEALTH_CHECK_TYPES)),
  port: u(int("port", 1, 65535)).optional(),
  intervalSeconds: u(seconds("intervalSeconds", ...INTERVAL_RANGE)).default(HEALTH_DEFAULTS.intervalSeconds),
  timeoutSeconds: u(positiveSeconds("timeoutSeconds")).optional(),
  rise: u(int("rise", 1, 100)).default(HEALTH_DEFAULTS.rise),
  fall: u(int("fall", 1, 100)).default(HEALTH_DEFAULTS.fall),
  http: u(httpSchema).optional(),
  dns: u(dnsSchema).optional(),
  onFailure: u(oneOf("onFailure", HEALTH_ON_FAILURE)).default(HEALTH_DEFAULTS.onFailure),
});
type Parsed = z.output<typeof healthCheckObject>;

/** Cross-field rules; each skips itself while a field it needs is unknown. Paths are relative to the check. */
function healthCheckRules(c: Parsed, raw: Record<string, unknown>, ctx: z.RefinementCtx) {
  const issue = (path: string[], message: string) => ctx.addIssue({ code: "custom", path, message });
  const t = c.type;
  if (isUnknown(t)) return;
  if (t === "none") {
    // Defaults are filled in `c`: the raw input says what the program gave.
    const given = Object.keys(raw).filter((k) => k !== "type" && raw[k] !== undefined);
    if (given.length > 0) issue(["type"], `type "none" switches the inherited check off and takes no other fields (${given.join(", ")} given)`);
    return;
  }
  const web = t === "http" || t === "https";
  if (c.http !== undefined && !web) issue(["http"], `http options are only used with type "http" or "https", not "${t}"`);
  if (c.dns !== undefined && t !== "dns") issue(["dns"], `dns options are only used with type "dns", not "${t}"`);
  if (t === "dns" && c.dns === undefined) issue(["dns"], 'dns (with dns.name, the name to ask for) is required for type "dns"');
  const h = c.http;
  if (h !== undefined && !isUnknown(h) && h.expectBody !== undefined && h.method === "HEAD")
    issue(["http", "expectBody"], 'expectBody needs method "GET": a HEAD response has no body');
  const iv = c.intervalSeconds, to = c.timeoutSeconds;
  if (to !== undefined && !isUnknown(to) && !isUnknown(iv) && to >= iv)
    issue(["timeoutSeconds"], `timeoutSeconds (${to}) must be less than intervalSeconds (${iv}): a probe ends before the next one starts`);
}

/** A check as the program gave it, checked, defaults filled but the port (that is the real server's). */
export const healthCheckSchema = z
  .unknown()
  .transform((raw, ctx) => {
    const r = healthCheckObject.safeParse(raw);
    if (!r.success) {
      for (const iss of r.error.issues) ctx.addIssue(iss as Parameters<typeof ctx.addIssue>[0]);
      return z.NEVER;
    }
    healthCheckRules(r.data, raw as Record<string, unknown>, ctx);
    return normalised(r.data);
  });

/** "none" alone; http filled in for http/https; the timeout's default follows the interval. */
function normalised(c: Parsed) {
  if (c.type === "none") return { type: "none" as const };
  const iv = c.intervalSeconds;
  const timeoutSeconds = c.timeoutSeconds ?? (isUnknown(iv) ? UNKNOWN : Math.min(HEALTH_DEFAULTS.timeoutSeconds, iv / 2));
  const web = c.type === "http" || c.type === "https";
  const http = c.http ?? (web ? { ...HEALTH_DEFAULTS.http } : undefined);
  const { http: _h, dns: _d, port: _p, ...rest } = c;
  return { ...rest, timeoutSeconds, ...(c.port !== undefined ? { port: c.port } : {}), ...(http !== undefined ? { http } : {}), ...(c.dns !== undefined ? { dns: c.dns } : {}) };
}

/** A check as check() leaves it (possibly unknown at preview, as a whole or in a field). */
export type HealthCheckChecked = z.output<typeof healthCheckSchema> | Unknown;
/** A check, fully known: `{ type: "none" }`, or one with every default filled (port absent = the real server's). */
export type HealthCheckModel = Known<z.output<typeof healthCheckSchema>>;

/**
 * The one inheritance rule: a real server's own check, else its pool's, else its service's (whole objects). Unknown
 * while the one that would decide is. Absent when none of them declares one.
 */
export function resolveHealthCheck<C>(own: C | undefined, ...inherited: (C | undefined)[]): C | undefined {
  return [own, ...inherited].find((c) => c !== undefined);
}

/**
 * A real server's port rule for its resolved check: it defaults to the real server's port, which a fwmark service's
 * real servers may leave 0 (keep the packet's port). The reason, or undefined.
 */
export function healthPortProblem(check: HealthCheckChecked | undefined, destPort: number | Unknown | undefined, inheritedFrom?: string): string | undefined {
  if (check === undefined || isUnknown(check) || check.type === "none" || isUnknown(check.type)) return undefined;
  if ("port" in check && check.port !== undefined) return undefined;
  if (destPort !== 0) return undefined;
  return `port (1..65535) is required: the real server's port is 0 (a fwmark service keeps the packet's port), so the check${inheritedFrom ? ` ${inheritedFrom}` : ""} cannot default to it`;
}

/** The check ensureDest sends (complete, port resolved), or null for none (PROTOCOL.md: null clears the record). */
export function healthCheckWire(check: HealthCheckModel | undefined, destPort: number): HealthCheck | null {
  if (check === undefined || check.type === "none") return null;
  const { port, http, dns, ...rest } = check;
  return {
    ...rest,
    type: check.type as HealthCheck["type"],
    onFailure: check.onFailure as HealthCheck["onFailure"],
    port: port ?? destPort,
    ...(http !== undefined ? { http: { ...http, method: http.method as "GET" | "HEAD" } } : {}),
    ...(dns !== undefined ? { dns: dns as NonNullable<HealthCheck["dns"]> } : {}),
  };
}
