// The provider's enum tables and the helper's are written in two languages; this checks they agree, against the
// helper binary itself (`ipvs-helper names` needs no kernel, so it runs on the build host; npm test builds it first).
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import {
  ALL_SYSCTLS,
  checkDirectorSettings,
  checkRealServer,
  checkVirtualService,
  DEFAULTS,
  FORWARDING,
  SCHEDULER_FLAGS,
  SCHEDULERS,
  TUNNEL_CHECKSUMS,
  TUNNEL_TYPES,
  type CheckResult,
} from "../../provider/schema";
import { DNS_TRANSPORTS, DNS_TYPES, HEALTH_CHECK_TYPES, HEALTH_ON_FAILURE, HTTP_METHODS, INTERVAL_RANGE, MAX_HTTP_FIELD } from "../../provider/schema/health";
import { director, fwmarkVs, rs, vs } from "./fixtures";

const HELPER = path.resolve(__dirname, "../../provider/helper/bin/ipvs-helper-linux-amd64");

describe("the provider's vocabulary is the helper's", () => {
  it("schedulers, scheduler flags, forwarding, tunnel types and checksums, the default scheduler", () => {
    expect(existsSync(HELPER), `${HELPER} is missing: run npm run build`).toBe(true);
    const names = JSON.parse(execFileSync(HELPER, ["names"], { encoding: "utf8" })) as Record<string, unknown>;
    const sorted = (xs: readonly string[]) => [...xs].sort();
    expect(sorted(names.schedulers as string[])).toEqual(sorted(SCHEDULERS));
    expect(sorted(names.schedulerFlags as string[])).toEqual(sorted(SCHEDULER_FLAGS));
    expect(sorted(names.forwarding as string[])).toEqual(sorted(FORWARDING));
    expect(sorted(names.tunnelTypes as string[])).toEqual(sorted(TUNNEL_TYPES));
    expect(sorted(names.tunnelChecksums as string[])).toEqual(sorted(TUNNEL_CHECKSUMS));
    expect(names.defaults).toEqual({ scheduler: DEFAULTS.scheduler });
  });

  it("the sysctls DirectorSettings may set: names, kinds, ranges and rules", () => {
    const names = JSON.parse(execFileSync(HELPER, ["names"], { encoding: "utf8" })) as { sysctls: Record<string, unknown>[] };
    const ours = ALL_SYSCTLS.map(({ name, kind, min, max, powerOfTwo, defense }) => ({
      name, kind, min, max, ...(powerOfTwo ? { powerOfTwo } : {}), ...(defense ? { defense } : {}),
    })).sort((a, b) => (a.name < b.name ? -1 : 1));
    expect(names.sysctls).toEqual(ours);
  });

  // Each number field the helper checks (`ipvs-helper names` prints its key in requests, range and default), with the
  // resource input that sets it. Whatever a resource accepts the helper must accept, so a value just outside the
  // helper's range is refused at preview; the provider accepts the helper's whole range unless `narrower` says why not.
  type Numbers = { key: string; min: number; max: number; default?: number }[];
  const settings = (over: Record<string, unknown>) => checkDirectorSettings(undefined, { director: director(), owner: "acme/lb/prod", ...over });
  const daemon = (over: Record<string, unknown>) => settings({ syncDaemons: [{ state: "master", interface: "eth0", syncId: 1, ...over }] });
  const timeoutsNarrower = "the kernel keeps timeouts in jiffies, so the provider stops at 2147483 s; 0 (the helper's \"unchanged\") is leaving one out";
  const fields: Record<string, { input: (v: number | undefined) => CheckResult<unknown>; property: string; read?: (r: unknown) => unknown; narrower?: string }> = {
    "service.port": { input: (v) => checkVirtualService(undefined, vs({ port: v, persistence: {} })), property: "port" },
    "service.fwmark": { input: (v) => checkVirtualService(undefined, fwmarkVs({ fwmark: v })), property: "fwmark" },
    "service.persistence.timeout": {
      input: (v) => checkVirtualService(undefined, vs({ persistence: { timeout: v } })),
      property: "persistence.timeout",
      read: (r) => (r as { persistence: { timeout: number } }).persistence.timeout,
    },
    "dest.port": { input: (v) => checkRealServer(undefined, rs({ port: v })), property: "port" },
    "dest.weight": { input: (v) => checkRealServer(undefined, rs({ weight: v })), property: "weight", read: (r) => (r as { weight: number }).weight },
    "dest.upperThreshold": { input: (v) => checkRealServer(undefined, rs({ upperThreshold: v })), property: "upperThreshold", read: (r) => (r as { upperThreshold: number }).upperThreshold },
    "dest.lowerThreshold": { input: (v) => checkRealServer(undefined, rs({ lowerThreshold: v, upperThreshold: v === undefined ? undefined : 2147483647 })), property: "lowerThreshold", read: (r) => (r as { lowerThreshold: number }).lowerThreshold },
    "dest.tunnel.port": {
      input: (v) => checkRealServer(undefined, rs({ port: undefined, forwarding: "tunnel", tunnel: { type: "gue", port: v } })),
      property: "tunnel.port",
      narrower: "only a gue tunnel takes a port, and it needs one: 0 is no port (the helper refuses it for gue by rule)",
    },
    tcp: { input: (v) => settings({ timeouts: { tcp: v } }), property: "timeouts.tcp", narrower: timeoutsNarrower },
    tcpfin: { input: (v) => settings({ timeouts: { tcpFin: v } }), property: "timeouts.tcpFin", narrower: timeoutsNarrower },
    udp: { input: (v) => settings({ timeouts: { udp: v } }), property: "timeouts.udp", narrower: timeoutsNarrower },
    "daemon.syncId": { input: (v) => daemon({ syncId: v }), property: "syncDaemons[0].syncId", narrower: "the provider requires a syncId: the default 0 is not chosen by leaving it out" },
    "daemon.maxLen": { input: (v) => daemon({ maxLength: v }), property: "syncDaemons[0].maxLength" },
    "daemon.port": { input: (v) => daemon({ port: v }), property: "syncDaemons[0].port" },
    "daemon.ttl": { input: (v) => daemon({ ttl: v }), property: "syncDaemons[0].ttl" },
  };

  it("number fields: the provider refuses what the helper would, accepts the helper's range, and has its defaults", () => {
    const numbers = (JSON.parse(execFileSync(HELPER, ["names"], { encoding: "utf8" })) as { numbers: Numbers }).numbers;
    expect(numbers.map((n) => n.key).sort()).toEqual(Object.keys(fields).sort());
    const refused = (r: CheckResult<unknown>, property: string) => r.failures.some((f) => f.property === property);
    for (const n of numbers) {
      const f = fields[n.key]!;
      expect([refused(f.input(n.min - 1), f.property), refused(f.input(n.max + 1), f.property)], `${n.key} just outside ${n.min}..${n.max}`).toEqual([true, true]);
      if (!f.narrower) {
        expect([refused(f.input(n.min), f.property), refused(f.input(n.max), f.property)], `${n.key} at ${n.min} and ${n.max}`).toEqual([false, false]);
      }
      if (n.default !== undefined && f.read) expect(f.read(f.input(undefined).inputs), `${n.key} default`).toBe(n.default);
    }
  });

  it("health checks: the types and words, and the number ranges, as the helper checks them (a value just outside refused at preview)", () => {
    type Health = { types: string[]; onFailure: string[]; httpMethods: string[]; dnsTypes: string[]; dnsTransports: string[]; sorryForwarding: string[];
      numbers: Numbers; intervalSeconds: [number, number]; maxHttpField: number };
    const h = (JSON.parse(execFileSync(HELPER, ["names"], { encoding: "utf8" })) as { health: Health }).health;
    // "none" is the provider's own: it switches an inherited check off and is sent as null.
    expect(HEALTH_CHECK_TYPES.filter((t) => t !== "none")).toEqual(h.types);
    expect([HEALTH_ON_FAILURE, HTTP_METHODS, DNS_TYPES, DNS_TRANSPORTS, FORWARDING]).toEqual([h.onFailure, h.httpMethods, h.dnsTypes, h.dnsTransports, h.sorryForwarding]);
    expect([INTERVAL_RANGE, MAX_HTTP_FIELD]).toEqual([h.intervalSeconds, h.maxHttpField]);
    const check = (over: Record<string, unknown>) => checkRealServer(undefined, rs({ healthCheck: { type: "tcp", ...over } }));
    const inputs: Record<string, { input: (v: number) => CheckResult<unknown>; property: string }> = {
      "healthCheck.port": { input: (v) => check({ port: v }), property: "healthCheck.port" },
      "healthCheck.rise": { input: (v) => check({ rise: v }), property: "healthCheck.rise" },
      "healthCheck.fall": { input: (v) => check({ fall: v }), property: "healthCheck.fall" },
      minHealthy: { input: (v) => checkVirtualService(undefined, vs({ minHealthy: v })), property: "minHealthy" },
      "minHealthy%": { input: (v) => checkVirtualService(undefined, vs({ minHealthy: `${v}%` })), property: "minHealthy" },
      "sorryServer.port": { input: (v) => checkVirtualService(undefined, vs({ sorryServer: { address: "10.0.0.9", port: v } })), property: "sorryServer.port" },
    };
    expect(h.numbers.map((n) => n.key).sort()).toEqual(Object.keys(inputs).sort());
    const refused = (r: CheckResult<unknown>, property: string) => r.failures.some((f) => f.property === property);
    for (const n of h.numbers) {
      const f = inputs[n.key]!;
      expect([n.min - 1, n.min, n.max, n.max + 1].map((v) => refused(f.input(v), f.property)), `${n.key} around ${n.min}..${n.max}`).toEqual([true, false, false, true]);
    }
  });
});
