// RealServerPool rules: one service's real servers as one resource. Each member has exactly a RealServer's fields,
// rules and messages (../realServer/fields.ts: DEST_FIELDS; ../realServer/schema.ts: memberRules, normaliseMember),
// paths prefixed by its index; the pool adds that no address:port is listed twice. check() turns the program's list into a map keyed "address:port": the
// engine records check's output as the inputs and, for a dynamic provider (which cannot return a detailed diff),
// shows preview's diff as the difference of old and new inputs, so a map shows per member what is added, removed, or
// which field of which member changes, where a list would show shifted indexes.
import { z } from "zod";
import { hostPort } from "../../director";
import { check, parse, serviceRefRequired, settleServiceUnknowns, type CheckFailure, type CheckResult } from "../../schema/check";
import { upgradeState } from "../../schema/director";
import { field, fieldsWithRole, shapeOf } from "../../schema/fields";
import { healthCheckSchema, type HealthCheckChecked, type HealthCheckModel } from "../../schema/health";
import { ownerSchema } from "../../schema/owner";
import { destObject, type DestModel } from "../realServer/fields";
import { issuer, memberRules, normaliseMember, normaliseServiceRef, serviceRefRules, serviceRefSchema } from "../realServer/schema";
import type { DrainModel, EngineModel, OwnershipModel, ServiceRefModel } from "../../schema/models";
import { isUnknown, u, UNKNOWN, type Unknown } from "../../schema/unknown";
import { bool, drainSchema } from "../../schema/values";

/**
 * A member as state records it: a RealServer's fields, plus `onlyOn` (director "host:port"s, sorted) when a partial
 * failure or a refresh left it on only some of the pool's directors; the next up then puts it on the others.
 */
const memberStateObject = z.strictObject({
  ...destObject.shape,
  onlyOn: u(z.array(z.string())).optional(),
});

/** Every RealServerPool input: its role and its rule and default. */
export const REAL_SERVER_POOL_FIELDS = {
  service: field("identity", u(serviceRefSchema)),
  // Each member is parsed on its own (poolSchema), so one member's bad field does not hide another's cross-field rules.
  members: field("setting", u(z.array(z.unknown(), { error: "members must be a list of real servers ({ address, port, weight, … })" })).default([])),
  // The members' default check (a member's own wins; the VirtualService's is the fallback): recorded resolved in each.
  healthCheck: field("setting", u(healthCheckSchema).optional()),
  drain: field("setting", u(drainSchema).optional()),
  adopt: field("setting", u(bool("adopt")).default(false)),
  // Ownership, as for a RealServer; every member is recorded with this pool's URN as its holder.
  owner: field("setting", u(ownerSchema("owner")).optional()),
  takeover: field("setting", u(bool("takeover")).default(false)),
  resourceUrn: field("engine", u(z.string()).optional()),
};

const poolObject = z.strictObject(shapeOf(REAL_SERVER_POOL_FIELDS));
type PoolParsed = z.output<typeof poolObject>;
export const REAL_SERVER_POOL_KEYS = Object.keys(REAL_SERVER_POOL_FIELDS) as (keyof PoolParsed)[];
export const REAL_SERVER_POOL_SETTINGS = fieldsWithRole(REAL_SERVER_POOL_FIELDS, "setting");

type MemberState = z.output<typeof memberStateObject>;

/** "10.0.0.11:8080", "[2001:db8::11]:80": a member's key, or undefined while its address or port is unknown. */
function keyOf(m: { address: string | Unknown; port?: number | Unknown }): string | undefined {
  return isUnknown(m.address) || m.port === undefined || isUnknown(m.port) ? undefined : hostPort(m.address, m.port);
}

/** Each member as a RealServer's own fields are checked: its field rules, then (when they pass) its cross-field rules. */
function parseMembers(raw: unknown[], service: PoolParsed["service"], poolCheck: HealthCheckChecked | undefined, ctx: z.RefinementCtx): (MemberState | Unknown)[] {
  const issue = issuer(ctx);
  const first = new Map<string, number>();
  return raw.flatMap((m, i): (MemberState | Unknown)[] => {
    if (isUnknown(m)) return [UNKNOWN];
    const r = memberStateObject.safeParse(m);
    if (!r.success) {
      for (const iss of r.error.issues) ctx.addIssue({ ...iss, path: ["members", i, ...iss.path] } as Parameters<typeof ctx.addIssue>[0]);
      return [];
    }
    memberRules(r.data, service, issue, ["members", i], poolCheck);
    const key = keyOf(normaliseMember(r.data, service));
    if (key !== undefined) {
      const j = first.get(key);
      if (j === undefined) first.set(key, i);
      else issue(["members", i], `members[${j}] and members[${i}] are both ${key}: a real server is listed once per pool`);
    }
    return [r.data];
  });
}

const poolSchema = poolObject.transform((p, ctx) => {
  serviceRefRules(p.service, issuer(ctx));
  const members = isUnknown(p.members) ? UNKNOWN : keyed(parseMembers(p.members, p.service, p.healthCheck, ctx), p.service, p.healthCheck);
  return {
    service: normaliseServiceRef(p.service),
    members,
    ...(p.healthCheck !== undefined ? { healthCheck: p.healthCheck } : {}),
    ...(p.drain !== undefined ? { drain: p.drain } : {}),
    adopt: p.adopt,
    ...(p.owner !== undefined ? { owner: p.owner } : {}),
    takeover: p.takeover,
    ...(p.resourceUrn !== undefined ? { resourceUrn: p.resourceUrn } : {}),
  };
});

/** The members by key; UNKNOWN while a key is not known yet (preview: an address, or the service port it defaults to). */
function keyed(members: (MemberState | Unknown)[], service: PoolParsed["service"], poolCheck: HealthCheckChecked | undefined) {
  const out: Record<string, ReturnType<typeof normaliseMember> & { onlyOn?: MemberState["onlyOn"] }> = {};
  for (const m of members) {
    if (isUnknown(m)) return UNKNOWN;
    const n = normaliseMember(m, service, poolCheck);
    const key = keyOf(n);
    if (key === undefined) return UNKNOWN;
    out[key] = { ...n, ...(m.onlyOn !== undefined ? { onlyOn: m.onlyOn } : {}) };
  }
  return out;
}

export type RealServerPoolChecked = z.output<typeof poolSchema>;

export type PoolMemberModel = DestModel & {
  /** The directors holding it, when not all of the pool's do (state only). */
  onlyOn?: string[];
};

export interface RealServerPoolModel extends OwnershipModel, EngineModel {
  service: ServiceRefModel;
  /** By "address:port". */
  members: Record<string, PoolMemberModel>;
  /** The members' default check (each member records the one in effect). */
  healthCheck?: HealthCheckModel;
  drain?: DrainModel;
  adopt: boolean;
}

/**
 * The program gives a list; state (check's output) holds the map. Both are validated as a list, so a member's
 * problem is named by its index either way; `onlyOn` is the provider's record, never an input.
 */
function asList(props: unknown): { props: unknown; failures: CheckFailure[] } {
  if (!props || typeof props !== "object") return { props, failures: [] };
  const members = (props as Record<string, unknown>).members;
  if (Array.isArray(members)) {
    const failures = members.flatMap((m, i) =>
      m && typeof m === "object" && "onlyOn" in m ? [{ property: `members[${i}].onlyOn`, reason: "onlyOn is recorded by the provider, not an input" }] : [],
    );
    return { props, failures };
  }
  if (members && typeof members === "object" && !isUnknown(members)) return { props: { ...props, members: Object.values(members) }, failures: [] };
  return { props, failures: [] };
}

/** Validate and normalise RealServerPool inputs (members keyed, defaults filled); the dynamic provider's check. */
export function checkRealServerPool(_olds: unknown, news: unknown): CheckResult<RealServerPoolChecked> {
  const { props, failures } = asList(settleServiceUnknowns(news));
  const r = check(poolSchema, props);
  return failures.length ? { inputs: news as RealServerPoolChecked, failures: [...failures, ...r.failures] } : r;
}

/** Fully known, normalised RealServerPool (for create/update/read/delete); throws with every problem listed. */
export function parseRealServerPool(inputs: unknown): RealServerPoolModel {
  const r = check(poolSchema, asList(settleServiceUnknowns(upgradeState(inputs))).props);
  return parse("RealServerPool inputs", r, serviceRefRequired(r.inputs.service));
}
