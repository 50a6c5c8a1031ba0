// check() and parse*(): the dynamic providers' check (at preview: pure, unknown-tolerant, every failure named by its
// property) and the strict parse create / update / read use (fully known, normalised, state of older versions upgraded).
import type { z } from "zod";
import { upgradeState } from "./director";
import { realServerSchema } from "../resources/realServer/schema";
import type { RealServerChecked, RealServerModel, VirtualServiceChecked, VirtualServiceModel } from "./models";
import { isUnknown } from "./unknown";
import { virtualServiceSchema } from "../resources/virtualService/schema";

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

export function check<S extends z.ZodType>(schema: S, news: unknown): CheckResult<z.output<S>> {
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
export function settleServiceUnknowns(props: unknown): unknown {
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

function unknownPaths(v: unknown, path: PropertyKey[] = []): string[] {
  if (isUnknown(v)) return [formatPath(path)];
  if (Array.isArray(v)) return v.flatMap((x, i) => unknownPaths(x, [...path, i]));
  if (v && typeof v === "object") return Object.entries(v).flatMap(([k, x]) => unknownPaths(x, [...path, k]));
  return [];
}

export function parse<T>(what: string, r: CheckResult<unknown>, extra: CheckFailure[] = []): T {
  const failures = [...r.failures, ...(r.failures.length ? [] : extra)];
  for (const p of r.failures.length ? [] : unknownPaths(r.inputs)) failures.push({ property: p, reason: "is not known yet" });
  if (failures.length) throw new Error(`invalid ${what}: ${failures.map((f) => `${f.property}: ${f.reason}`).join("; ")}`);
  return r.inputs as T;
}

/** Fully known, normalised VirtualService (for create/update/read); throws with every problem listed. */
export function parseVirtualService(inputs: unknown): VirtualServiceModel {
  return parse("VirtualService inputs", checkVirtualService(undefined, upgradeState(inputs)));
}

/** Fully known, normalised RealServer (for create/update/read); throws with every problem listed. */
export function parseRealServer(inputs: unknown): RealServerModel {
  const r = checkRealServer(undefined, upgradeState(inputs));
  return parse("RealServer inputs", r, serviceRefRequired(r.inputs.service));
}

/** What create/update/read need of a `service` reference that check lets pass while it comes from another resource. */
export function serviceRefRequired(svc: RealServerChecked["service"] | undefined): CheckFailure[] {
  const extra: CheckFailure[] = [];
  if (!isUnknown(svc) && svc) {
    if (svc.directors === undefined) extra.push({ property: "service.directors", reason: "is required (the VirtualService's directors)" });
    if (svc.fwmark === undefined && (svc.address === undefined || svc.port === undefined || svc.protocol === undefined))
      extra.push({ property: "service", reason: "needs fwmark, or protocol + address + port (the VirtualService's identity)" });
  }
  return extra;
}
