// RealServer rules (ipvsadm's, reference/ipvs-netlink.md §4): its field table, the cross-field rules and the
// normalisation (port defaulted from the service, tunnel defaults). A real server's own fields (DEST_FIELDS, in
// provider/resources/realServer/fields.ts) and rules (memberRules, normaliseMember) are also those of each member of a
// RealServerPool (../realServerPool/schema.ts).
import { z } from "zod";
import { directorsSchema } from "../../schema/director";
import { DEST_FIELD_NAMES, DEST_FIELDS, type DestParsed } from "./fields";
import { field, fieldsWithRole, shapeOf } from "../../schema/fields";
import { healthCheckSchema, healthPortProblem, resolveHealthCheck, type HealthCheckChecked } from "../../schema/health";
import { ownerSchema } from "../../schema/owner";
import { isUnknown, u, UNKNOWN, type Unknown } from "../../schema/unknown";
import { bool, drainSchema, parseIp } from "../../schema/values";
import { familyProblem, SERVICE_IDENTITY, serviceFamily, VIRTUAL_SERVICE_FIELDS } from "../virtualService/schema";

/**
 * The service a real server belongs to, as the RealServer resource passes it: the VirtualService's resolved `directors`
 * and its identity fields, all taken from its outputs, with the VirtualService's own rules for them. These come from
 * another resource, so at preview any of them may be unknown or even absent: check() lets that pass; parseRealServer()
 * requires them.
 */
export const serviceRefSchema = z.strictObject({
  directors: u(directorsSchema).optional(),
  ...Object.fromEntries(SERVICE_IDENTITY.map((k) => [k, VIRTUAL_SERVICE_FIELDS[k].schema])),
  // The VirtualService's healthCheck output: the default check of its real servers (resolveHealthCheck).
  healthCheck: u(healthCheckSchema).optional(),
} as { directors: z.ZodOptional<typeof VIRTUAL_SERVICE_FIELDS.directors.schema> } & { [K in (typeof SERVICE_IDENTITY)[number]]: (typeof VIRTUAL_SERVICE_FIELDS)[K]["schema"] } & {
  healthCheck: z.ZodOptional<ReturnType<typeof u<typeof healthCheckSchema>>>;
});

type ServiceRefParsed = z.output<typeof serviceRefSchema>;

/** Every RealServer input: its role and its rule and default. The service's identity is this one's too. */
export const REAL_SERVER_FIELDS = {
  service: field("identity", u(serviceRefSchema)),
  ...DEST_FIELDS,
  drain: field("setting", u(drainSchema).optional()),
  adopt: field("setting", u(bool("adopt")).default(false)),
  // Ownership, as for a VirtualService (../virtualService/schema.ts).
  owner: field("setting", u(ownerSchema("owner")).optional()),
  takeover: field("setting", u(bool("takeover")).default(false)),
  // The resource's own URN (src/urn.ts), for progress messages; absent in state written before it.
  resourceUrn: field("engine", u(z.string()).optional()),
};

const rsObject = z.strictObject(shapeOf(REAL_SERVER_FIELDS));
type RsParsed = z.output<typeof rsObject>;
/** The input property names of a RealServer. */
export const REAL_SERVER_KEYS = Object.keys(REAL_SERVER_FIELDS) as (keyof RsParsed)[];
export const REAL_SERVER_SETTINGS = fieldsWithRole(REAL_SERVER_FIELDS, "setting");

export type Issue = (path: (string | number)[], message: string) => void;
export const issuer = (ctx: z.RefinementCtx): Issue => (path, message) => ctx.addIssue({ code: "custom", path, message });

/** The rules of the `service` reference itself (a RealServer's or a RealServerPool's). */
export function serviceRefRules(service: ServiceRefParsed | Unknown, issue: Issue) {
  const svc = isUnknown(service) ? undefined : service;
  if (svc && svc.fwmark !== undefined)
    for (const k of ["protocol", "address", "port"] as const)
      if (svc[k] !== undefined) issue(["service", k], `service.${k} cannot be combined with service.fwmark`);
  // Refused rather than letting serviceFamily() silently prefer the address.
  const familyMismatch = svc && familyProblem(svc, "service.");
  if (familyMismatch) issue(["service", "family"], familyMismatch);
}

/**
 * The check in effect for a real server: its own, else its pool's (`poolCheck`), else its service's; unknown while the
 * one that decides is.
 */
export function effectiveCheck(own: HealthCheckChecked | undefined, service: ServiceRefParsed | Unknown, poolCheck?: HealthCheckChecked): HealthCheckChecked | undefined {
  return resolveHealthCheck(own, poolCheck, isUnknown(service) ? UNKNOWN : service.healthCheck);
}

/**
 * A real server's own cross-field rules against its service; `at` prefixes the paths (a pool member's index);
 * `poolCheck`: its pool's default check.
 */
export function memberRules(r: DestParsed, service: ServiceRefParsed | Unknown, issue: Issue, at: (string | number)[] = [], poolCheck?: HealthCheckChecked) {
  const svc = isUnknown(service) ? undefined : service;
  const svcFamily = svc && serviceFamily(svc);
  const fwd = r.forwarding;
  const here: Issue = (path, message) => issue([...at, ...path], message);

  if (!isUnknown(r.address) && svcFamily !== undefined && !isUnknown(svcFamily) && !isUnknown(fwd) && fwd !== "tunnel") {
    const family = parseIp(r.address)!.family;
    if (family !== svcFamily)
      here(["address"], `address ${r.address} is ${family} but the service is ${svcFamily}: mixing families needs forwarding "tunnel"`);
  }

  // ipvsadm silently rewrites the port for dr/tunnel on address services; we refuse instead of surprising the user.
  if ((fwd === "dr" || fwd === "tunnel") && svc && svc.fwmark === undefined) {
    if (r.port !== undefined && !isUnknown(r.port) && svc.port !== undefined && !isUnknown(svc.port) && r.port !== svc.port)
      here(["port"], `port must equal the service port (${svc.port}) with forwarding "${fwd}": the packet is not rewritten, so the real server sees the service port (omit port)`);
  }

  const up = r.upperThreshold, low = r.lowerThreshold;
  // The kernel refuses lower > upper even when upper is 0 (0 = no upper limit), so a lower threshold needs an upper one.
  if (!isUnknown(up) && !isUnknown(low) && low > up)
    here(["lowerThreshold"], up === 0
      ? "lowerThreshold needs an upperThreshold: with upperThreshold 0 (no limit) lowerThreshold must be 0"
      : `lowerThreshold (${low}) must not be greater than upperThreshold (${up})`);

  if (r.tunnel !== undefined && !isUnknown(fwd) && fwd !== "tunnel")
    here(["tunnel"], `tunnel options are only used with forwarding "tunnel", not "${fwd}"`);

  const from = r.healthCheck !== undefined ? undefined : poolCheck !== undefined ? "inherited from the pool" : "inherited from the VirtualService";
  const portProblem = healthPortProblem(effectiveCheck(r.healthCheck, service, poolCheck), normaliseMember(r, service).port, from);
  if (portProblem) here(["healthCheck", "port"], portProblem);
}

/**
 * A real server's own fields normalised: port defaulted from the service, tunnel defaults filled, the check in effect
 * (effectiveCheck) recorded as its own, so normalising the result again gives the same.
 */
export function normaliseMember(r: DestParsed, svc: ServiceRefParsed | Unknown, poolCheck?: HealthCheckChecked) {
  let port = r.port;
  if (port === undefined && !isUnknown(svc)) {
    // Omitted port = the service port (ipvsadm); a fwmark service has no port, so 0 (= keep the packet's port).
    port = svc.fwmark !== undefined ? 0 : svc.port;
  }
  const tunnel = r.forwarding === "tunnel" ? (r.tunnel ?? { type: "ipip" as const, checksum: "nocsum" as const }) : r.tunnel;
  // Every field of the table (`r` may be a whole RealServer's inputs); absent ones stay absent.
  const own = Object.fromEntries(DEST_FIELD_NAMES.flatMap((k) => (r[k] !== undefined ? [[k, r[k]]] : []))) as DestParsed;
  const { port: _p, tunnel: _t, healthCheck: _h, ...settings } = own;
  const healthCheck = effectiveCheck(r.healthCheck, svc, poolCheck);
  return { ...settings, ...(port !== undefined ? { port } : {}), ...(tunnel !== undefined ? { tunnel } : {}), ...(healthCheck !== undefined ? { healthCheck } : {}) };
}

/** The service reference normalised (its family settled). */
export const normaliseServiceRef = (svc: ServiceRefParsed | Unknown) => (isUnknown(svc) ? svc : { ...svc, family: serviceFamily(svc) });

function realServerRules(r: RsParsed, ctx: z.RefinementCtx) {
  const issue = issuer(ctx);
  serviceRefRules(r.service, issue);
  memberRules(r, r.service, issue);
}

export const realServerSchema = rsObject.superRefine(realServerRules).transform((r) => {
  return {
    service: normaliseServiceRef(r.service),
    ...normaliseMember(r, r.service),
    ...(r.drain !== undefined ? { drain: r.drain } : {}),
    adopt: r.adopt,
    ...(r.owner !== undefined ? { owner: r.owner } : {}),
    takeover: r.takeover,
    ...(r.resourceUrn !== undefined ? { resourceUrn: r.resourceUrn } : {}),
  };
});
