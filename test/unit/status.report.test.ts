// pulumi-ipvs status, the pure part: reading the exported state (secrets revealed in memory, grouped by director),
// comparing it with kernel dumps field by field, and the text and JSON operators and scripts read. The fixtures are an
// export as `pulumi stack export --show-secrets` writes it and dumps as the helper returns them.
import { describe, expect, it } from "vitest";
import type { Dest, Service, Stats } from "../../provider/protocol";
import { compareStack, exitCode, type KernelSettings, type KernelView } from "../../provider/status/compare";
import { driftLines, formatValue, render, renderJson, renderText } from "../../provider/status/render";
import { credentials, revealSecrets, stackEntries, type ExportedResource } from "../../provider/status/state";
import { director, PRIVATE_KEY } from "./fixtures";

const PASSWORD = "hunter2-bastion";

const SIG = "4dabf18193072939515e22adb298388d";
/** A secret value the way an export with --show-secrets holds it. */
const secret = (v: unknown) => ({ [SIG]: "1b47061264138c4ac30d75fd1eb44270", plaintext: JSON.stringify(v) });

const DIRECTOR_A = director({ host: "203.0.113.5", port: 22 });
const DIRECTOR_B = director({ host: "203.0.113.6", port: 2222, jumpHost: { host: "198.51.100.1", user: "jump", password: PASSWORD, insecureIgnoreHostKey: true } });

const urn = (kind: string, name: string) => `urn:pulumi:prod::lb::pulumi-nodejs:dynamic/ipvs:${kind}::${name}`;

function vsResource(name: string, over: Record<string, unknown> = {}, directors = [DIRECTOR_A]): ExportedResource {
  return {
    urn: urn("VirtualService", name),
    type: "pulumi-nodejs:dynamic/ipvs:VirtualService",
    id: `tcp/192.0.2.10:80@203.0.113.5:22`,
    outputs: {
      family: "ipv4", protocol: "tcp", address: "192.0.2.10", port: 80, scheduler: "rr", schedulerFlags: [], onePacket: false, adopt: false,
      directors: secret(directors),
      ...over,
    },
  };
}

function rsResource(name: string, address: string, over: Record<string, unknown> = {}, directors = [DIRECTOR_A]): ExportedResource {
  return {
    urn: urn("RealServer", name),
    type: "pulumi-nodejs:dynamic/ipvs:RealServer",
    id: `tcp/192.0.2.10:80/${address}:8080@203.0.113.5:22`,
    outputs: {
      service: secret({ family: "ipv4", protocol: "tcp", address: "192.0.2.10", port: 80, directors }),
      address, port: 8080, forwarding: "nat", weight: 5, upperThreshold: 0, lowerThreshold: 0, adopt: false,
      ...over,
    },
  };
}

function stats(over: Partial<Stats> = {}): Stats {
  return { conns: 12, inPkts: 120, outPkts: 100, inBytes: 9000, outBytes: 80000, cps: 1, inPps: 10, outPps: 8, inBps: 700, outBps: 6000, ...over };
}

function kernelDest(address: string, over: Partial<Dest> = {}): Dest {
  return {
    address, port: 8080, forwarding: "nat", weight: 5, upperThreshold: 0, lowerThreshold: 0, tunnel: null,
    activeConns: 2, inactiveConns: 3, persistentConns: 0, stats: stats(),
    ...over,
  };
}

function kernelService(dests: Dest[], over: Record<string, unknown> = {}): Service {
  return {
    family: "ipv4", protocol: "tcp", address: "192.0.2.10", port: 80,
    scheduler: "rr", schedulerFlags: [], persistence: null, persistenceEngine: "", onePacket: false,
    stats: stats({ conns: 36 }), dests,
    ...over,
  } as Service;
}

const A = "203.0.113.5:22";
const B = "203.0.113.6:2222";
const QUICKSTART = [vsResource("web"), rsResource("app-1", "10.0.0.11"), rsResource("app-2", "10.0.0.12")];
const inSync = () => kernelService([kernelDest("10.0.0.11"), kernelDest("10.0.0.12")]);
const views = (...entries: [string, KernelView][]) => new Map(entries);

describe("stackEntries", () => {
  it("reveals secrets in memory; only credentials, at any depth, are kept for redaction", () => {
    const revealed = revealSecrets({ a: secret({ host: "203.0.113.5", n: [secret("inner")] }), b: 1 });
    expect(revealed).toEqual({ a: { host: "203.0.113.5", n: ["inner"] }, b: 1 });
    const hops = [{ host: "h", user: "ops", privateKey: "k1", jumpHost: { host: "j", password: "p2", jumpHost: { privateKeyPassphrase: "p3" } } }];
    expect(credentials(hops)).toEqual(["k1", "p2", "p3"]);
  });

  it("reads both kinds from their outputs and groups the directors by host:port (one entry per director)", () => {
    const e = stackEntries([
      { urn: "urn:pulumi:prod::lb::pulumi:pulumi:Stack::lb-prod", type: "pulumi:pulumi:Stack" },
      vsResource("web", {}, [DIRECTOR_A, DIRECTOR_B]),
      rsResource("app-1", "10.0.0.11", {}, [DIRECTOR_A, DIRECTOR_B]),
    ]);
    expect(e.problems).toEqual([]);
    expect(e.services.map((s) => s.resource.name)).toEqual(["web"]);
    expect(e.dests.map((d) => [d.resource.name, d.key])).toEqual([["app-1", { address: "10.0.0.11", port: 8080 }]]);
    expect([...e.directors.keys()]).toEqual([A, B]);
    expect(e.directors.get(B)).toMatchObject({ host: "203.0.113.6", port: 2222, user: "ops", sudo: true });
    expect(new Set(e.secrets)).toEqual(new Set([PASSWORD, PRIVATE_KEY]));
  });

  it("leaves out resources read with get(), and reports state it cannot parse instead of guessing", () => {
    const e = stackEntries([
      { ...vsResource("existing"), external: true },
      vsResource("broken", { scheduler: "nope" }),
      // An export without --show-secrets: the credentials are still ciphertext.
      vsResource("encrypted", { directors: { "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", ciphertext: "v1:abc" } }),
    ]);
    expect(e.services).toEqual([]);
    expect(e.problems).toHaveLength(2);
    expect(e.problems[0]).toMatch(/^VirtualService broken: cannot read its state: .*scheduler/);
    expect(e.problems[1]).toMatch(/^VirtualService encrypted: cannot read its state: .*directors/);
  });
});

describe("compareStack", () => {
  it("everything as declared: ok, exit 0, counters and connections from the kernel", () => {
    // State lists resources in creation order; the report in address order.
    const report = compareStack("prod", stackEntries([...QUICKSTART].reverse()), views([A, { services: [inSync()] }]));
    expect(report.status).toBe("ok");
    expect(report.directors[0]!.services[0]!.realServers.map((r) => r.resource)).toEqual(["app-1", "app-2"]);
    expect(exitCode(report)).toBe(0);
    const [svc] = report.directors[0]!.services;
    expect(svc).toMatchObject({ service: "tcp/192.0.2.10:80", resource: "web", status: "ok", differences: [], stats: { conns: 36 } });
    expect(svc!.realServers[0]).toMatchObject({
      realServer: "10.0.0.11:8080", resource: "app-1", status: "ok", activeConns: 2, inactiveConns: 3,
      stats: { cps: 1, inPps: 10, outPps: 8, inBps: 700, outBps: 6000 },
    });
  });

  it("names each field that differs, with both values; drift is exit 1", () => {
    const kernel = kernelService([kernelDest("10.0.0.11", { weight: 9 }), kernelDest("10.0.0.12", { forwarding: "dr", upperThreshold: 100 })], {
      scheduler: "wlc",
    });
    const report = compareStack("prod", stackEntries(QUICKSTART), views([A, { services: [kernel] }]));
    expect(report.status).toBe("drift");
    expect(exitCode(report)).toBe(1);
    const [svc] = report.directors[0]!.services;
    expect(svc!.differences).toEqual([{ field: "scheduler", declared: "rr", kernel: "wlc" }]);
    expect(svc!.realServers[0]!.differences).toEqual([{ field: "weight", declared: 5, kernel: 9 }]);
    expect(svc!.realServers[1]!.differences).toEqual([
      { field: "forwarding", declared: "nat", kernel: "dr" },
      { field: "upperThreshold", declared: 0, kernel: 100 },
    ]);
  });

  it("persistence, flags as a set, and 'local' forwarding read as refresh reads them", () => {
    const e = stackEntries([
      vsResource("web", { scheduler: "sh", schedulerFlags: ["sh-port", "sh-fallback"], persistence: { timeout: 300, netmask: "255.255.255.0" } }),
      rsResource("app-1", "10.0.0.11"),
    ]);
    const same = kernelService([kernelDest("10.0.0.11", { forwarding: "local" })], {
      scheduler: "sh", schedulerFlags: ["sh-fallback", "sh-port"], persistence: { timeout: 300, netmask: "255.255.255.0" },
    });
    expect(compareStack("prod", e, views([A, { services: [same] }])).status).toBe("ok");
    const other = kernelService([kernelDest("10.0.0.11")], { scheduler: "sh", schedulerFlags: ["sh-port", "sh-fallback"], persistence: null });
    const svc = compareStack("prod", e, views([A, { services: [other] }])).directors[0]!.services[0]!;
    expect(svc.differences).toEqual([{ field: "persistence", declared: { timeout: 300, netmask: "255.255.255.0" }, kernel: undefined }]);
  });

  it("a bound VIP is compared as refresh reads it: the recorded binding while its address is there", () => {
    const e = stackEntries([vsResource("web", { bindAddress: true }), rsResource("app-1", "10.0.0.11")]);
    const bound = (present: boolean) => kernelService([kernelDest("10.0.0.11")], { bindAddress: { interface: "ipvs0", dummy: true, added: true, present } });
    expect(compareStack("prod", e, views([A, { services: [bound(true)] }])).status).toBe("ok");
    const svc = compareStack("prod", e, views([A, { services: [bound(false)] }])).directors[0]!.services[0]!;
    expect(svc.differences).toEqual([{ field: "bindAddress", declared: true, kernel: false }]);
  });

  it("missing service or real server is drift; kernel-only real servers are listed as unmanaged, not drift", () => {
    const onlyOne = kernelService([kernelDest("10.0.0.11"), kernelDest("10.0.0.99")]);
    const r1 = compareStack("prod", stackEntries(QUICKSTART), views([A, { services: [onlyOne] }]));
    expect(r1.status).toBe("drift");
    const rows = r1.directors[0]!.services[0]!.realServers.map((r) => [r.realServer, r.resource, r.status]);
    expect(rows).toEqual([
      ["10.0.0.11:8080", "app-1", "ok"],
      ["10.0.0.12:8080", "app-2", "missing"],
      ["10.0.0.99:8080", undefined, "unmanaged"],
    ]);

    const foreign = kernelService([kernelDest("10.0.0.50")], { address: "198.51.100.7", port: 443 });
    const r2 = compareStack("prod", stackEntries(QUICKSTART), views([A, { services: [foreign] }]));
    expect(r2.directors[0]!.services[0]).toMatchObject({ resource: "web", status: "missing" });
    expect(r2.directors[0]!.services[0]!.realServers.map((r) => r.status)).toEqual(["missing", "missing"]);
    expect(r2.directors[0]!.otherServices).toEqual(["tcp/198.51.100.7:443"]);

    const extra = kernelService([kernelDest("10.0.0.11"), kernelDest("10.0.0.12"), kernelDest("10.0.0.99")]);
    expect(compareStack("prod", stackEntries(QUICKSTART), views([A, { services: [extra] }])).status).toBe("ok");
  });

  it("real servers in a service another stack manages: the service is listed as unmanaged, its real servers compared", () => {
    const report = compareStack("prod", stackEntries([rsResource("app-1", "10.0.0.11")]), views([A, { services: [inSync()] }]));
    const [svc] = report.directors[0]!.services;
    expect(svc).toMatchObject({ service: "tcp/192.0.2.10:80", status: "unmanaged" });
    expect(svc!.resource).toBeUndefined();
    expect(svc!.realServers.map((r) => [r.realServer, r.status])).toEqual([["10.0.0.11:8080", "ok"], ["10.0.0.12:8080", "unmanaged"]]);
    expect(report.status).toBe("ok");
  });

  it("an unreadable director is reported with its message, its entries unknown, exit 2; other directors still compared", () => {
    const e = stackEntries([vsResource("web", {}, [DIRECTOR_A, DIRECTOR_B]), rsResource("app-1", "10.0.0.11", { weight: 1 }, [DIRECTOR_A, DIRECTOR_B])]);
    const report = compareStack(
      "prod",
      e,
      views([A, { services: [kernelService([kernelDest("10.0.0.11", { weight: 9 })])] }], [B, { error: "cannot reach ops@203.0.113.6:2222: connect ECONNREFUSED" }]),
    );
    expect(report.status).toBe("error");
    expect(exitCode(report)).toBe(2);
    const [a, b] = report.directors;
    expect(a!.services[0]!.realServers[0]!.status).toBe("differs");
    expect(b).toMatchObject({ director: B, error: expect.stringMatching(/ECONNREFUSED/) });
    expect(b!.services[0]!.status).toBe("unknown");
    expect(b!.services[0]!.realServers[0]!.status).toBe("unknown");
  });

  it("a resource whose state cannot be read makes the report an error", () => {
    const report = compareStack("prod", stackEntries([...QUICKSTART, vsResource("broken", { port: "x" })]), views([A, { services: [inSync()] }]));
    expect(report.status).toBe("error");
    expect(report.problems[0]).toMatch(/VirtualService broken/);
  });

  it("the report carries no director settings (credentials): only keys, settings and counters", () => {
    const report = compareStack("prod", stackEntries([vsResource("web", {}, [DIRECTOR_B])]), views([B, { services: [kernelService([], { stats: stats() })] }]));
    const text = JSON.stringify(report);
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain("PRIVATE KEY");
    expect(text).not.toContain("hostKey");
  });
});

const quickstart = () => stackEntries(QUICKSTART);

describe("status rendering", () => {
  it("values read as people write them", () => {
    expect(formatValue(undefined)).toBe("none");
    expect(formatValue([])).toBe("none");
    expect(formatValue(["sh-port", "sh-fallback"])).toBe("sh-port,sh-fallback");
    expect(formatValue({ timeout: 300, netmask: "255.255.255.0" })).toBe("timeout=300 netmask=255.255.255.0");
  });

  it("text: a row per service and real server with weight, connections and rates; verdicts and a drift summary", () => {
    const kernel = kernelService(
      [kernelDest("10.0.0.11", { weight: 9, activeConns: 4, inactiveConns: 7 }), kernelDest("10.0.0.99")],
      { scheduler: "wlc" },
    );
    const foreign = kernelService([], { address: "198.51.100.7", port: 443 });
    const text = renderText(compareStack("prod", quickstart(), new Map([[A, { services: [kernel, foreign] }]])));
    const lines = text.split("\n");
    expect(lines[0]).toBe("Stack prod: drift (1 director(s), 1 service(s))");
    expect(text).toContain(`Director ${A} (ops@${A})`);
    const header = lines.find((l) => l.includes("Entry"))!;
    expect(header.trim().split(/\s+/)).toEqual(["Entry", "Resource", "Sched/Fwd", "Weight", "ActConn", "InActConn", "Conns", "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS", "Status"]);
    const row = (needle: string) => lines.find((l) => l.includes(needle))!.trim().split(/\s{2,}/);
    expect(row("tcp/192.0.2.10:80")).toEqual(["tcp/192.0.2.10:80", "web", "wlc", "36", "1", "10", "8", "700", "6000", "scheduler: declared rr, kernel wlc"]);
    expect(row("10.0.0.11:8080")).toEqual(["-> 10.0.0.11:8080", "app-1", "nat", "9", "4", "7", "12", "1", "10", "8", "700", "6000", "weight: declared 5, kernel 9"]);
    expect(row("10.0.0.12:8080")).toEqual(["-> 10.0.0.12:8080", "app-2", "nat", "5", "missing in kernel"]);
    expect(row("10.0.0.99:8080").at(-1)).toBe("not managed by this stack");
    expect(text).toContain("Also on this director, not managed by this stack: tcp/198.51.100.7:443");
    const drift = lines.slice(lines.indexOf("Drift:") + 1).filter((l) => l.trim());
    expect(drift.map((l) => l.trim())).toEqual([
      `VirtualService web (tcp/192.0.2.10:80 on ${A}): scheduler: declared rr, kernel wlc`,
      `RealServer app-1 (10.0.0.11:8080 of tcp/192.0.2.10:80 on ${A}): weight: declared 5, kernel 9`,
      `RealServer app-2 (10.0.0.12:8080 of tcp/192.0.2.10:80 on ${A}): missing in kernel`,
    ]);
  });

  it("text: in sync says so and has no drift section; an unreadable director shows its message", () => {
    const ok = renderText(compareStack("prod", quickstart(), new Map([[A, { services: [kernelService([kernelDest("10.0.0.11"), kernelDest("10.0.0.12")])] }]])));
    expect(ok.split("\n")[0]).toBe("Stack prod: everything matches (1 director(s), 1 service(s))");
    expect(ok).not.toContain("Drift:");
    const down = renderText(compareStack("prod", quickstart(), new Map([[A, { error: "no answer within 20 s (connectTimeoutSeconds)" }]])));
    expect(down).toContain(`Director ${A} (ops@${A}): cannot read it: no answer within 20 s (connectTimeoutSeconds)`);
    expect(down).toContain("unknown (director not read)");
    expect(driftLines(compareStack("prod", quickstart(), new Map([[A, { error: "x" }]])))).toEqual([]);
  });

  it("JSON: one document holding the whole report", () => {
    const report = compareStack("prod", quickstart(), new Map([[A, { services: [kernelService([kernelDest("10.0.0.11", { weight: 9 })])] }]]));
    const doc = JSON.parse(renderJson(report)) as typeof report;
    expect(doc).toEqual(JSON.parse(JSON.stringify(report)));
    expect(doc.status).toBe("drift");
    expect(doc.directors[0]!.services[0]!.realServers[0]!.differences).toEqual([{ field: "weight", declared: 5, kernel: 9 }]);
  });

  it("printed output redacts credentials an error message quotes, and nothing else", () => {
    const e = stackEntries([vsResource("web", {}, [DIRECTOR_B])]);
    const report = compareStack("prod", e, new Map([[B, { error: `jump host refused password ${PASSWORD}` }]]));
    for (const json of [false, true]) {
      const out = render(report, { json, credentials: e.secrets });
      expect(out).not.toContain(PASSWORD);
      expect(out).toContain("refused password [redacted]");
      expect(out).toContain(`ops@${B}`.slice(json ? 4 : 0));
      expect(out).toContain("tcp/192.0.2.10:80");
    }
  });
});

// A RealServerPool's state holds its members as a map keyed "address:port" (check's output); a DirectorSettings' holds
// what it declares. getSettings answers every timeout, the running daemons and the sysctls asked for.
function poolResource(name: string, members: Record<string, number>, directors = [DIRECTOR_A]): ExportedResource {
  return {
    urn: urn("RealServerPool", name),
    type: "pulumi-nodejs:dynamic/ipvs:RealServerPool",
    id: `pool/tcp/192.0.2.10:80@203.0.113.5:22`,
    outputs: {
      service: secret({ family: "ipv4", protocol: "tcp", address: "192.0.2.10", port: 80, directors }),
      members: Object.fromEntries(
        Object.entries(members).map(([key, weight]) => {
          const [address, port] = key.split(":");
          return [key, { address, port: Number(port), forwarding: "nat", weight, upperThreshold: 0, lowerThreshold: 0 }];
        }),
      ),
      adopt: false, takeover: false, owner: "acme/lb/prod",
    },
  };
}

function settingsResource(name: string, over: Record<string, unknown> = {}, d = DIRECTOR_B): ExportedResource {
  return {
    urn: urn("DirectorSettings", name),
    type: "pulumi-nodejs:dynamic/ipvs:DirectorSettings",
    id: `settings@${String(d.host)}:${String(d.port)}`,
    outputs: {
      director: secret(d),
      timeouts: { tcp: 900, udp: 60 },
      syncDaemons: [{ state: "master", interface: "eth0", syncId: 7 }],
      sysctls: { expireNodestConn: true, connReuseMode: 0, dropEntry: 1 },
      owner: "acme/lb/prod",
      ...over,
    },
  };
}

function kernelSettings(over: Partial<KernelSettings> & { sysctls?: KernelSettings["sysctls"] } = {}): KernelSettings {
  return {
    timeouts: { tcp: 900, tcpfin: 120, udp: 60 },
    daemons: [{ state: "master", interface: "eth0", syncId: 7 }],
    ...over,
    sysctls: { "net.ipv4.vs.expire_nodest_conn": 1, "net.ipv4.vs.conn_reuse_mode": 0, "net.ipv4.vs.drop_entry": 2, ...over.sysctls },
  };
}

const POOL = [vsResource("web"), poolResource("web-pool", { "10.0.0.21:8080": 5, "10.0.0.22:8080": 5, "10.0.0.23:8080": 5 })];
const poolKernel = (...dests: Dest[]) => kernelService(dests);

describe("RealServerPool members and DirectorSettings", () => {
  it("stackEntries: each member is a real server of the pool's service, named pool[address:port]; a settings-only director is listed", () => {
    const e = stackEntries([...POOL, settingsResource("settings")]);
    expect(e.problems).toEqual([]);
    expect(e.dests.map((d) => [d.name, d.resource.kind, d.key, d.entry.weight])).toEqual([
      ["web-pool[10.0.0.21:8080]", "RealServerPool", { address: "10.0.0.21", port: 8080 }, 5],
      ["web-pool[10.0.0.22:8080]", "RealServerPool", { address: "10.0.0.22", port: 8080 }, 5],
      ["web-pool[10.0.0.23:8080]", "RealServerPool", { address: "10.0.0.23", port: 8080 }, 5],
    ]);
    expect(e.settings.map((s) => [s.resource.name, s.director])).toEqual([["settings", B]]);
    expect([...e.directors.keys()]).toEqual([A, B]);
    expect(new Set(e.secrets)).toEqual(new Set([PASSWORD, PRIVATE_KEY]));
  });

  it("stackEntries: a second DirectorSettings for one director, or a pool whose state cannot be read, is a problem", () => {
    const e = stackEntries([settingsResource("one"), settingsResource("two"), poolResource("bad", { "10.0.0.21:8080": 70000 })]);
    expect(e.settings.map((s) => s.resource.name)).toEqual(["one"]);
    expect(e.problems).toEqual([
      `DirectorSettings two: director ${B} already has DirectorSettings one in this stack (one per director); only one is compared`,
      expect.stringMatching(/^RealServerPool bad: cannot read its state: .*weight/),
    ]);
  });

  it("pool members compared field by field as RealServers are: a member that differs and a missing one are drift", () => {
    const kernel = poolKernel(kernelDest("10.0.0.21"), kernelDest("10.0.0.22", { weight: 9 }), kernelDest("10.0.0.99"));
    const report = compareStack("prod", stackEntries(POOL), views([A, { services: [kernel] }]));
    expect(report.status).toBe("drift");
    expect(exitCode(report)).toBe(1);
    const rows = report.directors[0]!.services[0]!.realServers.map((r) => [r.realServer, r.resource, r.pool, r.status, r.differences]);
    expect(rows).toEqual([
      ["10.0.0.21:8080", "web-pool[10.0.0.21:8080]", "web-pool", "ok", []],
      ["10.0.0.22:8080", "web-pool[10.0.0.22:8080]", "web-pool", "differs", [{ field: "weight", declared: 5, kernel: 9 }]],
      ["10.0.0.23:8080", "web-pool[10.0.0.23:8080]", "web-pool", "missing", []],
      ["10.0.0.99:8080", undefined, undefined, "unmanaged", []],
    ]);
    const inSyncPool = poolKernel(kernelDest("10.0.0.21"), kernelDest("10.0.0.22"), kernelDest("10.0.0.23"));
    expect(compareStack("prod", stackEntries(POOL), views([A, { services: [inSyncPool] }])).status).toBe("ok");
  });

  it("settings as the kernel has them: ok, every declared field listed; a defense mode's automatic 2 is the declared 1", () => {
    const report = compareStack("prod", stackEntries([settingsResource("settings")]), views([B, { services: [], settings: { settings: kernelSettings() } }]));
    expect(report.status).toBe("ok");
    expect(report.directors).toHaveLength(1);
    expect(report.directors[0]!.services).toEqual([]);
    expect(report.directors[0]!.settings).toEqual({
      resource: "settings",
      status: "ok",
      fields: [
        { field: "timeouts.tcp", status: "ok", declared: 900, kernel: 900 },
        { field: "timeouts.udp", status: "ok", declared: 60, kernel: 60 },
        { field: "sysctls.connReuseMode", status: "ok", declared: 0, kernel: 0 },
        { field: "sysctls.dropEntry", status: "ok", declared: 1, kernel: 1 },
        { field: "sysctls.expireNodestConn", status: "ok", declared: true, kernel: true },
        { field: "syncDaemons.master.interface", status: "ok", declared: "eth0", kernel: "eth0" },
        { field: "syncDaemons.master.syncId", status: "ok", declared: 7, kernel: 7 },
      ],
    });
  });

  it("settings that differ name the field with both values and are drift; a declared daemon not running is one field", () => {
    const kernel = kernelSettings({ timeouts: { tcp: 800, tcpfin: 120, udp: 60 }, daemons: [], sysctls: { "net.ipv4.vs.expire_nodest_conn": 0 } });
    const report = compareStack("prod", stackEntries([settingsResource("settings")]), views([B, { services: [], settings: { settings: kernel } }]));
    expect(report.status).toBe("drift");
    expect(exitCode(report)).toBe(1);
    const st = report.directors[0]!.settings!;
    expect(st.status).toBe("differs");
    expect(st.fields.filter((f) => f.status === "differs")).toEqual([
      { field: "timeouts.tcp", status: "differs", declared: 900, kernel: 800 },
      { field: "sysctls.expireNodestConn", status: "differs", declared: true, kernel: false },
      { field: "syncDaemons.master", status: "differs", declared: { state: "master", interface: "eth0", syncId: 7 }, kernel: null },
    ]);
    const other = kernelSettings({ daemons: [{ state: "master", interface: "eth1", syncId: 7 }] });
    const r2 = compareStack("prod", stackEntries([settingsResource("settings")]), views([B, { services: [], settings: { settings: other } }]));
    expect(r2.directors[0]!.settings!.fields.filter((f) => f.status === "differs")).toEqual([
      { field: "syncDaemons.master.interface", status: "differs", declared: "eth0", kernel: "eth1" },
    ]);
  });

  it("ftp.ports: the module's ports as one field, ok in any order; not loaded (kernel none) or other ports are drift", () => {
    const declared = stackEntries([settingsResource("settings", { ftp: { ports: [21, 2121] } })]);
    const run = (ftp?: { ports: number[] }) => compareStack("prod", declared, views([B, { services: [], settings: { settings: kernelSettings(ftp ? { ftp } : {}) } }]));
    const ftpField = (r: ReturnType<typeof run>) => r.directors[0]!.settings!.fields.find((f) => f.field === "ftp.ports");

    const loaded = run({ ports: [2121, 21] });
    expect(loaded.status).toBe("ok");
    expect(ftpField(loaded)).toEqual({ field: "ftp.ports", status: "ok", declared: [21, 2121], kernel: [21, 2121] });

    const notLoaded = run();
    expect(notLoaded.status).toBe("drift");
    expect(ftpField(notLoaded)).toEqual({ field: "ftp.ports", status: "differs", declared: [21, 2121], kernel: null });
    expect(driftLines(notLoaded)).toEqual([`DirectorSettings settings (on ${B}): ftp.ports: declared 21,2121, kernel none`]);
    expect(renderText(notLoaded)).toMatch(/ftp\.ports\s+21,2121\s+none\s+differs/);

    const other = run({ ports: [21] });
    expect(ftpField(other)).toEqual({ field: "ftp.ports", status: "differs", declared: [21, 2121], kernel: [21] });
    // Without ftp declared, a loaded module is not the stack's business.
    const undeclared = compareStack("prod", stackEntries([settingsResource("settings")]), views([B, { services: [], settings: { settings: kernelSettings({ ftp: { ports: [21] } }) } }]));
    expect(undeclared.directors[0]!.settings!.fields.map((f) => f.field)).not.toContain("ftp.ports");
    expect(undeclared.status).toBe("ok");
  });

  it("a member state records on only some directors (onlyOn) is compared there only, as a RealServer is", () => {
    const pool = poolResource("web-pool", { "10.0.0.21:8080": 5, "10.0.0.22:8080": 5 }, [DIRECTOR_A, DIRECTOR_B]);
    const members = pool.outputs!.members as Record<string, Record<string, unknown>>;
    members["10.0.0.22:8080"]!.onlyOn = [A];
    const report = compareStack("prod", stackEntries([pool]), views([A, { services: [poolKernel(kernelDest("10.0.0.21"), kernelDest("10.0.0.22"))] }], [B, { services: [poolKernel(kernelDest("10.0.0.21"))] }]));
    const rows = (d: string) => report.directors.find((x) => x.director === d)!.services[0]!.realServers.map((r) => [r.resource, r.status]);
    expect(rows(A)).toEqual([["web-pool[10.0.0.21:8080]", "ok"], ["web-pool[10.0.0.22:8080]", "ok"]]);
    expect(rows(B)).toEqual([["web-pool[10.0.0.21:8080]", "ok"]]);
    expect(report.status).toBe("ok");
  });

  it("an unreadable director: its members and settings are unknown, exit 2; settings that alone cannot be read too", () => {
    const e = stackEntries([poolResource("web-pool", { "10.0.0.21:8080": 5 }, [DIRECTOR_A, DIRECTOR_B]), settingsResource("settings")]);
    const down = compareStack("prod", e, views([A, { services: [poolKernel(kernelDest("10.0.0.21"))] }], [B, { error: "cannot reach ops@203.0.113.6:2222" }]));
    expect(down.status).toBe("error");
    expect(exitCode(down)).toBe(2);
    const b = down.directors.find((d) => d.director === B)!;
    expect(b.services[0]!.realServers.map((r) => [r.resource, r.status])).toEqual([["web-pool[10.0.0.21:8080]", "unknown"]]);
    expect(b.settings).toMatchObject({ resource: "settings", status: "unknown" });
    expect(b.settings!.error).toBeUndefined();
    expect(b.settings!.fields.map((f) => [f.field, f.status, f.kernel])).toContainEqual(["timeouts.tcp", "unknown", undefined]);

    const refused = compareStack("prod", stackEntries([settingsResource("settings")]), views([B, { services: [], settings: { error: "UNSUPPORTED_KERNEL: no net.ipv4.vs.drop_entry" } }]));
    expect(refused.status).toBe("error");
    expect(refused.directors[0]!.error).toBeUndefined();
    expect(refused.directors[0]!.settings).toMatchObject({ status: "unknown", error: "UNSUPPORTED_KERNEL: no net.ipv4.vs.drop_entry" });
  });

  it("text and JSON: members and settings listed; drift names the member and each setting", () => {
    const e = stackEntries([...POOL, settingsResource("settings", {}, DIRECTOR_A)]);
    const kernel = poolKernel(kernelDest("10.0.0.21"), kernelDest("10.0.0.22", { weight: 9 }));
    const settings = kernelSettings({ timeouts: { tcp: 800, tcpfin: 120, udp: 60 } });
    const report = compareStack("prod", e, views([A, { services: [kernel], settings: { settings } }]));
    const text = renderText(report);
    const lines = text.split("\n");
    const row = (needle: string) => lines.find((l) => l.includes(needle))!.trim().split(/\s{2,}/);
    expect(row("10.0.0.22:8080")).toEqual(["-> 10.0.0.22:8080", "web-pool[10.0.0.22:8080]", "nat", "9", "2", "3", "12", "1", "10", "8", "700", "6000", "weight: declared 5, kernel 9"]);
    expect(row("10.0.0.23:8080")).toEqual(["-> 10.0.0.23:8080", "web-pool[10.0.0.23:8080]", "nat", "5", "missing in kernel"]);
    expect(text).toContain("  DirectorSettings settings: drift");
    expect(row("timeouts.tcp")).toEqual(["timeouts.tcp", "900", "800", "differs"]);
    expect(row("sysctls.expireNodestConn")).toEqual(["sysctls.expireNodestConn", "true", "true", "ok"]);
    const drift = lines.slice(lines.indexOf("Drift:") + 1).filter((l) => l.trim());
    expect(drift.map((l) => l.trim())).toEqual([
      `RealServerPool web-pool[10.0.0.22:8080] (10.0.0.22:8080 of tcp/192.0.2.10:80 on ${A}): weight: declared 5, kernel 9`,
      `RealServerPool web-pool[10.0.0.23:8080] (10.0.0.23:8080 of tcp/192.0.2.10:80 on ${A}): missing in kernel`,
      `DirectorSettings settings (on ${A}): timeouts.tcp: declared 900, kernel 800`,
    ]);
    const doc = JSON.parse(renderJson(report)) as typeof report;
    expect(doc.directors[0]!.settings!.fields[0]).toEqual({ field: "timeouts.tcp", status: "differs", declared: 900, kernel: 800 });

    // A director with only settings has no entry table; one whose settings cannot be read says why.
    const only = renderText(compareStack("prod", stackEntries([settingsResource("settings")]), views([B, { services: [], settings: { error: "no net.ipv4.vs.drop_entry" } }])));
    expect(only).not.toMatch(/^\s+Entry\s/m);
    expect(only).toContain("  DirectorSettings settings: cannot read them: no net.ipv4.vs.drop_entry");
    expect(only).toMatch(/timeouts\.tcp\s+900\s+unknown \(settings not read\)/);
  });
});

// State after a refresh: the outputs hold what the kernel had, the inputs what the program declared.
describe("declared (the state's inputs) against refreshed (its outputs)", () => {
  /** `r` as a refresh leaves it: its outputs changed by `refreshed`, its inputs the program's (the old outputs). */
  const refreshedTo = (r: ExportedResource, refreshed: Record<string, unknown>): ExportedResource => ({
    ...r,
    inputs: { ...r.outputs, __provider: "exports.handler = …" },
    outputs: { ...r.outputs, ...refreshed },
  });

  it("a hand edit a refresh wrote into state is still drift against what was declared; --refreshed sees none", () => {
    const state = [
      refreshedTo(vsResource("web"), { scheduler: "wlc" }),
      refreshedTo(rsResource("app-1", "10.0.0.11"), { weight: 9 }),
      rsResource("app-2", "10.0.0.12"),
      refreshedTo(settingsResource("settings", {}, DIRECTOR_A), { timeouts: { tcp: 700, udp: 60 } }),
    ];
    const kernel = views([A, { services: [kernelService([kernelDest("10.0.0.11", { weight: 9 }), kernelDest("10.0.0.12")], { scheduler: "wlc" })], settings: { settings: kernelSettings({ timeouts: { tcp: 700, tcpfin: 120, udp: 60 } }) } }]);

    const declared = compareStack("prod", stackEntries(state), kernel);
    expect(declared.status).toBe("drift");
    expect(driftLines(declared)).toEqual([
      `VirtualService web (tcp/192.0.2.10:80 on ${A}): scheduler: declared rr, kernel wlc`,
      `RealServer app-1 (10.0.0.11:8080 of tcp/192.0.2.10:80 on ${A}): weight: declared 5, kernel 9`,
      `DirectorSettings settings (on ${A}): timeouts.tcp: declared 900, kernel 700`,
    ]);
    const refreshed = compareStack("prod", stackEntries(state, "refreshed"), kernel);
    expect(refreshed.status).toBe("ok");
    expect(driftLines(refreshed)).toEqual([]);
  });

  it("a pool member a refresh found gone (dropped from the outputs) is still missing in kernel", () => {
    const pool = poolResource("web-pool", { "10.0.0.21:8080": 5, "10.0.0.22:8080": 5 });
    const outputs = pool.outputs!.members as Record<string, unknown>;
    const state = [vsResource("web"), refreshedTo(pool, { members: { "10.0.0.21:8080": outputs["10.0.0.21:8080"] } })];
    const kernel = views([A, { services: [poolKernel(kernelDest("10.0.0.21"))] }]);

    const declared = compareStack("prod", stackEntries(state), kernel);
    expect(declared.directors[0]!.services[0]!.realServers.map((r) => [r.resource, r.status])).toEqual([
      ["web-pool[10.0.0.21:8080]", "ok"],
      ["web-pool[10.0.0.22:8080]", "missing"],
    ]);
    expect(renderText(declared)).toContain(`RealServerPool web-pool[10.0.0.22:8080] (10.0.0.22:8080 of tcp/192.0.2.10:80 on ${A}): missing in kernel`);
    expect(compareStack("prod", stackEntries(state, "refreshed"), kernel).status).toBe("ok");
  });

  it("the declared form is the wire mapping's round trip: tunnel, persistence engine and flags compare as refresh reads them", () => {
    const state = [
      vsResource("web", { protocol: "udp", scheduler: "mh", schedulerFlags: ["mh-port"], persistence: { timeout: 60, netmask: "255.255.255.255", engine: "sip" } }),
      rsResource("app-1", "10.0.0.11", {
        port: 80, forwarding: "tunnel", tunnel: { type: "gue", port: 6080, checksum: "remcsum" },
        service: secret({ family: "ipv4", protocol: "udp", address: "192.0.2.10", port: 80, directors: [DIRECTOR_A] }),
      }),
    ];
    const kernel = kernelService([kernelDest("10.0.0.11", { port: 80, forwarding: "tunnel", tunnel: { type: "gue", port: 6080, checksum: "remcsum" } })], {
      protocol: "udp", scheduler: "mh", schedulerFlags: ["mh-port"], persistence: { timeout: 60, netmask: "255.255.255.255" }, persistenceEngine: "sip",
    });
    const report = compareStack("prod", stackEntries(state), views([A, { services: [kernel] }]));
    expect(report.problems).toEqual([]);
    expect(report.status).toBe("ok");
  });
});

// Health (issue 27) apart from drift: a real server the checker depooled or removed is compared at its declared
// weight (as refresh reads it) and named under "Health", a hand edit of a healthy one's weight is drift, the sorry
// server the checker added is not a foreign real server, and a checker that is not running is said.
describe("health", () => {
  const H = { since: "2026-12-06T20:00:00Z", declaredWeight: 5, check: "http" } as const;
  const down = { ...H, state: "unhealthy", last: "connection refused", depooled: true } as const;
  const up = { ...H, state: "healthy", last: "ok", depooled: false } as const;
  const report = (dests: Dest[], checker = { running: true }) =>
    compareStack("prod", stackEntries(QUICKSTART), views([A, { services: [kernelService(dests)], checker }]));

  it("a depooled real server is health, not drift: declared weight compared, kernel's weight shown", () => {
    const r = report([kernelDest("10.0.0.11", { weight: 0, health: down }), kernelDest("10.0.0.12", { health: up })]);
    expect(r.status).toBe("ok");
    expect(exitCode(r)).toBe(0);
    const rs1 = r.directors[0]!.services[0]!.realServers[0]!;
    expect(rs1).toMatchObject({ status: "ok", kernel: { weight: 0 }, health: down });
    expect(r.health).toEqual([
      `app-1 (10.0.0.11:8080 of tcp/192.0.2.10:80 on ${A}): unhealthy since 2026-12-06T20:00:00Z: connection refused; depooled (weight 0, declared 5, restored on recovery)`,
    ]);
    const text = renderText(r);
    expect(text).toContain("Stack prod: everything matches");
    expect(text).toContain("Health checker: running");
    expect(text).toMatch(/-> 10\.0\.0\.11:8080\s+app-1\s+nat\s+0 .*ok \[health: unhealthy since 2026-12-06T20:00:00Z: connection refused; depooled/);
    expect(text).toMatch(/-> 10\.0\.0\.12:8080\s+app-2\s+nat\s+5 .*ok \[health: healthy since 2026-12-06T20:00:00Z: ok\]/);
    expect(text).toContain("Health (the checker's doing, not drift):\n  app-1 (10.0.0.11:8080");
    expect(JSON.parse(renderJson(r)).directors[0].checker).toEqual({ running: true });
  });

  it("one the checker removed is listed as declared, with no kernel values", () => {
    const r = report([kernelDest("10.0.0.11", { health: { ...down, removed: true } }), kernelDest("10.0.0.12", { health: up })]);
    expect(r.status).toBe("ok");
    const rs1 = r.directors[0]!.services[0]!.realServers[0]!;
    expect(rs1.kernel).toBeUndefined();
    expect(r.health[0]).toContain("removed by the checker (declared weight 5, restored on recovery)");
    expect(renderText(r)).toMatch(/-> 10\.0\.0\.11:8080\s+app-1\s+nat\s+- /);
  });

  it("a hand edit of a healthy real server's weight is still drift", () => {
    const r = report([kernelDest("10.0.0.11", { weight: 9, health: up }), kernelDest("10.0.0.12", { health: up })]);
    expect(r.status).toBe("drift");
    expect(r.directors[0]!.services[0]!.realServers[0]!.differences).toEqual([{ field: "weight", declared: 5, kernel: 9 }]);
    expect(r.health).toEqual([]);
  });

  it("kept pooled by minHealthy, the sorry server, and a checker that is not running", () => {
    const kept = { ...H, state: "unhealthy", last: "HTTP 503", depooled: false, kept: true } as const;
    const r = report(
      [kernelDest("10.0.0.11", { weight: 5, health: kept }), kernelDest("10.0.0.12", { weight: 0, health: down }), kernelDest("10.0.0.99", { weight: 1, sorry: true })],
      { running: false },
    );
    expect(r.status).toBe("ok");
    expect(r.health).toEqual([
      `${A}: the health checker is not running: no real server is depooled or restored, the weights stay as they are`,
      `app-1 (10.0.0.11:8080 of tcp/192.0.2.10:80 on ${A}): unhealthy since 2026-12-06T20:00:00Z: HTTP 503; kept pooled by minHealthy`,
      `app-2 (10.0.0.12:8080 of tcp/192.0.2.10:80 on ${A}): unhealthy since 2026-12-06T20:00:00Z: connection refused; depooled (weight 0, declared 5, restored on recovery)`,
      `sorry server 10.0.0.99:8080 of tcp/192.0.2.10:80 on ${A}: in the pool, no real server is healthy`,
    ]);
    const text = renderText(r);
    expect(text).toContain("Health checker: NOT RUNNING (no real server is depooled or restored; the weights stay as they are)");
    expect(text).toMatch(/-> 10\.0\.0\.99:8080\s+-\s+nat\s+1 .*sorry server \(added by the health checker: no real server is healthy\)/);
  });

  it("without checks, nothing about health", () => {
    const r = compareStack("prod", stackEntries(QUICKSTART), views([A, { services: [inSync()] }]));
    expect(r.health).toEqual([]);
    expect(renderText(r)).not.toMatch(/[Hh]ealth/);
  });
});

// A RealServerHost's state holds the VIPs and sysctls check derived; getHost answers each recorded VIP with its
// interface and whether it is there now, and the recorded sysctls' values (provider/helper/PROTOCOL.md "Real server hosts").
describe("real server hosts", () => {
  const ARP = { "net.ipv4.conf.all.arp_announce": 2, "net.ipv4.conf.all.arp_ignore": 1 };
  const JUMP = director({ host: "203.0.113.5", port: 22 });
  const HOST_PASSWORD = "rs-secret-pw";
  function hostResource(name: string, address: string, over: Record<string, unknown> = {}): ExportedResource {
    const props = {
      host: secret(director({ host: address, port: 22, user: "root", privateKey: undefined, password: HOST_PASSWORD, jumpHost: JUMP })),
      forwarding: "dr", vips: ["192.0.2.20", "192.0.2.21"], sysctls: ARP,
      owner: "acme/lb/prod", resourceUrn: urn("RealServerHost", name),
      ...over,
    };
    return { urn: urn("RealServerHost", name), type: "pulumi-nodejs:dynamic/ipvs:RealServerHost", id: `realserverhost@${address}:22`, inputs: { ...props, __provider: "exports.handler = …" }, outputs: props };
  }
  const hostState = (device: string, present: Record<string, boolean>, sysctls: Record<string, number> = ARP): KernelHost => ({
    host: { forwarding: device === "lo" ? "dr" : "tunnel", vips: Object.entries(present).map(([address, p]) => ({ address, interface: device, present: p, added: true })), sysctls },
  });
  type KernelHost = { host: { forwarding: "dr" | "tunnel"; vips: { address: string; interface: string; present: boolean; added: boolean }[]; sysctls: Record<string, number> } | null };
  const both = { "192.0.2.20": true, "192.0.2.21": true };
  const STACK = [...QUICKSTART, hostResource("web-host-2", "10.10.0.12"), hostResource("web-host-1", "10.10.0.11")];
  const dirs = () => views([A, { services: [inSync()] }]);
  const hostViews = (one: KernelHost | { error: string }, two: KernelHost | { error: string } = hostState("lo", both)) =>
    new Map([[urn("RealServerHost", "web-host-1"), one], [urn("RealServerHost", "web-host-2"), two]]);

  it("stackEntries: a RealServerHost is a host to read, not a director; its credentials are kept for redaction", () => {
    const e = stackEntries(STACK);
    expect(e.problems).toEqual([]);
    expect([...e.directors.keys()]).toEqual([A]);
    expect(e.hosts.map((h) => [h.resource.name, h.entry.host.host, h.entry.vips, h.entry.sysctls])).toEqual([
      ["web-host-2", "10.10.0.12", ["192.0.2.20", "192.0.2.21"], ARP],
      ["web-host-1", "10.10.0.11", ["192.0.2.20", "192.0.2.21"], ARP],
    ]);
    expect(e.secrets).toContain(HOST_PASSWORD);
    expect(stackEntries([hostResource("bad", "10.10.0.11", { forwarding: "nat" })]).problems[0]).toMatch(/^RealServerHost bad: cannot read its state: .*forwarding/);
  });

  it("every VIP on its device and every sysctl as declared: ok, exit 0, each host listed in name order with its route", () => {
    const report = compareStack("prod", stackEntries(STACK), dirs(), hostViews(hostState("lo", both)));
    expect(report.status).toBe("ok");
    expect(exitCode(report)).toBe(0);
    expect(report.hosts.map((h) => [h.resource, h.status])).toEqual([["web-host-1", "ok"], ["web-host-2", "ok"]]);
    expect(report.hosts[0]).toEqual({
      resource: "web-host-1", host: "10.10.0.11:22", user: "root", via: ["ops@203.0.113.5:22"], forwarding: "dr", status: "ok",
      vips: [{ address: "192.0.2.20", device: "lo", status: "ok" }, { address: "192.0.2.21", device: "lo", status: "ok" }],
      sysctls: [
        { name: "net.ipv4.conf.all.arp_announce", status: "ok", declared: 2, kernel: 2 },
        { name: "net.ipv4.conf.all.arp_ignore", status: "ok", declared: 1, kernel: 1 },
      ],
    });
    const text = renderText(report);
    expect(text.split("\n")[0]).toBe("Stack prod: everything matches (1 director(s), 1 service(s), 2 real server host(s))");
    expect(text).toContain(
      [
        "Real server host web-host-1 (root@10.10.0.11:22 via ops@203.0.113.5:22, dr): ok",
        "  Prepared                        Declared  Host     Status",
        "  vip 192.0.2.20 on lo            present   present  ok",
        "  vip 192.0.2.21 on lo            present   present  ok",
        "  net.ipv4.conf.all.arp_announce  2         2        ok",
        "  net.ipv4.conf.all.arp_ignore    1         1        ok",
      ].join("\n"),
    );
    expect(text).not.toContain("Drift:");
  });

  it("a VIP removed by hand and a reset sysctl are drift, exit 1, named per host in the drift section and in JSON", () => {
    const report = compareStack("prod", stackEntries(STACK), dirs(), hostViews(hostState("lo", { "192.0.2.20": false, "192.0.2.21": true }, { ...ARP, "net.ipv4.conf.all.arp_ignore": 0 })));
    expect(report.status).toBe("drift");
    expect(exitCode(report)).toBe(1);
    expect(report.hosts[1]!.status).toBe("ok");
    const text = renderText(report);
    expect(text).toContain("Real server host web-host-1 (root@10.10.0.11:22 via ops@203.0.113.5:22, dr): drift");
    expect(text).toMatch(/ {2}vip 192\.0\.2\.20 on lo +present +missing +missing on lo\n/);
    expect(text).toMatch(/ {2}net\.ipv4\.conf\.all\.arp_ignore +1 +0 +differs\n/);
    expect(driftLines(report)).toEqual([
      "RealServerHost web-host-1 (root@10.10.0.11:22 via ops@203.0.113.5:22): vip 192.0.2.20 missing on lo; net.ipv4.conf.all.arp_ignore: declared 1, kernel 0",
    ]);
    const doc = JSON.parse(renderJson(report)) as typeof report;
    expect(doc.hosts[0]).toMatchObject({
      status: "differs",
      vips: [{ address: "192.0.2.20", device: "lo", status: "missing" }, { address: "192.0.2.21", device: "lo", status: "ok" }],
      sysctls: [{ name: "net.ipv4.conf.all.arp_announce", status: "ok" }, { name: "net.ipv4.conf.all.arp_ignore", status: "differs", declared: 1, kernel: 0 }],
    });
  });

  it("tunnel: the VIP on tunl0 and its rp_filter; a sysctl the host no longer has (tunl0 gone with its module) is none", () => {
    const tunnel = hostResource("tun-1", "10.10.0.31", { forwarding: "tunnel", tunnel: { type: "ipip" }, vips: ["192.0.2.30"], sysctls: { ...ARP, "net.ipv4.conf.tunl0.rp_filter": 0 } });
    const entries = stackEntries([tunnel]);
    const gone = compareStack("prod", entries, new Map(), new Map([[tunnel.urn, hostState("tunl0", { "192.0.2.30": false }, ARP)]]));
    expect(gone.hosts[0]).toMatchObject({
      forwarding: "tunnel", status: "differs",
      vips: [{ address: "192.0.2.30", device: "tunl0", status: "missing" }],
      sysctls: [{ status: "ok" }, { status: "ok" }, { name: "net.ipv4.conf.tunl0.rp_filter", status: "differs", declared: 0, kernel: null }],
    });
    expect(driftLines(gone)).toEqual([
      "RealServerHost tun-1 (root@10.10.0.31:22 via ops@203.0.113.5:22): vip 192.0.2.30 missing on tunl0; net.ipv4.conf.tunl0.rp_filter: declared 0, kernel none",
    ]);
    const ok = compareStack("prod", entries, new Map(), new Map([[tunnel.urn, hostState("tunl0", { "192.0.2.30": true }, { ...ARP, "net.ipv4.conf.tunl0.rp_filter": 0 })]]));
    expect(ok.status).toBe("ok");
    expect(renderText(ok)).toContain("  vip 192.0.2.30 on tunl0  ");
  });

  it("a host with no record of the resource is drift (not prepared); an unreachable one is an error, exit 2, its message shown and redacted", () => {
    const none = compareStack("prod", stackEntries(STACK), dirs(), hostViews({ host: null }));
    expect(none.status).toBe("drift");
    expect(none.hosts[0]).toMatchObject({ status: "missing", vips: [{ device: null, status: "missing" }, { device: null, status: "missing" }], sysctls: [{ status: "differs", kernel: null }, { status: "differs", kernel: null }] });
    expect(driftLines(none)).toEqual(["RealServerHost web-host-1 (root@10.10.0.11:22 via ops@203.0.113.5:22): not prepared: the host has no record of it (up prepares it)"]);
    expect(renderText(none)).toMatch(/ {2}vip 192\.0\.2\.20 +present +not recorded +missing\n/);

    const e = stackEntries(STACK);
    const down = compareStack("prod", e, dirs(), hostViews({ error: `RealServerHost on root@10.10.0.11:22: read failed: ssh: password ${HOST_PASSWORD} refused` }));
    expect(down.status).toBe("error");
    expect(exitCode(down)).toBe(2);
    expect(down.hosts[0]).toMatchObject({ status: "unknown", vips: [{ status: "unknown", device: null }, { status: "unknown" }], sysctls: [{ status: "unknown" }, { status: "unknown" }] });
    expect(down.hosts[0]!.sysctls[0]).not.toHaveProperty("kernel");
    expect(driftLines(down)).toEqual([]);
    for (const json of [false, true]) {
      const out = render(down, { json, credentials: e.secrets });
      expect(out).not.toContain(HOST_PASSWORD);
      expect(out).toContain("password [redacted] refused");
    }
    expect(render(down, { json: false, credentials: e.secrets })).toContain(
      "Real server host web-host-1 (root@10.10.0.11:22 via ops@203.0.113.5:22, dr): cannot read it: RealServerHost on root@10.10.0.11:22: read failed: ssh: password [redacted] refused",
    );
  });

  it("a stack without RealServerHosts reports an empty hosts list and no host count", () => {
    const report = compareStack("prod", stackEntries(QUICKSTART), dirs());
    expect(report.hosts).toEqual([]);
    expect(renderText(report).split("\n")[0]).toBe("Stack prod: everything matches (1 director(s), 1 service(s))");
  });
});
