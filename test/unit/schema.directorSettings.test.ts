// DirectorSettings input rules (provider/resources/directorSettings/schema.ts): every range checked at preview, naming the field.
import { describe, expect, it } from "vitest";
import { checkDirectorSettings, parseDirectorSettings, SYSCTLS } from "../../provider/schema";
import { U, director, expectFailure, expectOk } from "./fixtures";

const OWNER = "acme/lb/prod";
const settings = (over: Record<string, unknown> = {}) => ({ director: director(), owner: OWNER, ...over });
const check = (over: Record<string, unknown> = {}) => checkDirectorSettings(undefined, settings(over));

describe("DirectorSettings normalisation", () => {
  it("fills the director's defaults; nothing given is nothing managed", () => {
    expect(expectOk(check())).toEqual({
      director: expect.objectContaining({ host: "203.0.113.5", port: 22, sudo: true }),
      syncDaemons: [], sysctls: {}, owner: OWNER,
    });
  });
  it("keeps what is given, drops empty sections, sorts daemons master first", () => {
    const v = expectOk(check({
      timeouts: { tcp: 900, udp: undefined }, ipForward: {},
      sysctls: { connReuseMode: 0, expireNodestConn: true, syncThreshold: { threshold: 3, period: 50 }, estCpulist: "3,0-2" },
      syncDaemons: [{ state: "backup", interface: "eth1", syncId: 1 }, { state: "master", interface: "eth1", syncId: 1, group: "FF02::1:5" }],
    }));
    expect(v.timeouts).toEqual({ tcp: 900 });
    expect(v).not.toHaveProperty("ipForward");
    expect(v.sysctls).toEqual({ connReuseMode: 0, expireNodestConn: true, syncThreshold: { threshold: 3, period: 50 }, estCpulist: "0-3" });
    expect(v.syncDaemons).toEqual([
      { state: "master", interface: "eth1", syncId: 1, group: "ff02::1:5" },
      { state: "backup", interface: "eth1", syncId: 1 },
    ]);
  });
  it("writes a cpulist as the kernel prints it back", () => {
    const cpus = (estCpulist: string) => (expectOk(check({ sysctls: { estCpulist } })).sysctls as Record<string, unknown>).estCpulist;
    expect(cpus("0-7:1/2")).toBe("0,2,4,6");
    expect(cpus("0-9:2/4,12")).toBe("0-1,4-5,8-9,12");
    expect(cpus(" ")).toBe("");
  });
  it("accepts every sysctl field at its bounds", () => {
    for (const [k, d] of Object.entries(SYSCTLS)) {
      const values: unknown[] =
        "bool" in d ? [false, true] : d.kind === "pair" ? [{ threshold: 0, period: 0 }, { threshold: 0, period: d.max }] : d.kind === "cpulist" ? ["0", `${d.max}`] : [d.min, d.max];
      for (const v of values) expectOk(check({ sysctls: { [k]: v } }));
    }
  });
  it("lets preview's unknown values through anywhere", () => {
    expectOk(check({ director: U, sysctls: U, timeouts: U, syncDaemons: U, ipForward: U, owner: U }));
    expectOk(check({ sysctls: { connReuseMode: U, syncThreshold: { threshold: U, period: 3 } }, syncDaemons: [U, { state: U, interface: "eth0", syncId: U }] }));
  });
  it("parse refuses what is still unknown", () => {
    expect(() => parseDirectorSettings(settings({ sysctls: { syncRetries: U } }))).toThrow("sysctls.syncRetries: is not known yet");
  });
});

describe("DirectorSettings rules", () => {
  it("sysctl ranges, naming the field and the sysctl", () => {
    expectFailure(check({ sysctls: { connReuseMode: 4 } }), "sysctls.connReuseMode", /^sysctls\.connReuseMode \(net\.ipv4\.vs\.conn_reuse_mode\) must be an integer 0\.\.3$/);
    expectFailure(check({ sysctls: { estNice: -21 } }), "sysctls.estNice", /must be an integer -20\.\.19/);
    expectFailure(check({ sysctls: { syncRetries: 1.5 } }), "sysctls.syncRetries", /must be an integer 0\.\.3/);
    expectFailure(check({ sysctls: { dropEntry: "1" } }), "sysctls.dropEntry", /must be an integer 0\.\.3/);
    expectFailure(check({ sysctls: { lblcExpiration: 2147484 } }), "sysctls.lblcExpiration", /0\.\.2147483/);
    expectFailure(check({ sysctls: { syncPorts: 6 } }), "sysctls.syncPorts", /net\.ipv4\.vs\.sync_ports\) must be a power of two 1\.\.64/);
    expectFailure(check({ sysctls: { syncPorts: 128 } }), "sysctls.syncPorts", /must be an integer 1\.\.64/);
  });
  it("on/off sysctls and forwarding are booleans", () => {
    expectFailure(check({ sysctls: { expireNodestConn: 1 } }), "sysctls.expireNodestConn", /net\.ipv4\.vs\.expire_nodest_conn\) must be true or false/);
    expectFailure(check({ ipForward: { ipv6: "yes" } }), "ipForward.ipv6", /ipForward\.ipv6 \(net\.ipv6\.conf\.all\.forwarding\) must be true or false/);
  });
  it("sync_threshold: threshold below period, or period 0", () => {
    expectOk(check({ sysctls: { syncThreshold: { threshold: 5, period: 0 } } }));
    expectFailure(check({ sysctls: { syncThreshold: { threshold: 50, period: 50 } } }), "sysctls.syncThreshold.threshold", /must be below sysctls\.syncThreshold\.period \(50\), or the period 0, not 50/);
    expectFailure(check({ sysctls: { syncThreshold: { threshold: -1, period: 50 } } }), "sysctls.syncThreshold.threshold", /0\.\.2147483647/);
    expectFailure(check({ sysctls: { syncThreshold: [3, 50] } }), "sysctls.syncThreshold", /must be \{ threshold, period \}/);
    expectFailure(check({ sysctls: { syncThreshold: { threshold: 3 } } }), "sysctls.syncThreshold.period", /is required/);
  });
  it("est_cpulist: CPU numbers only", () => {
    expectFailure(check({ sysctls: { estCpulist: "all" } }), "sysctls.estCpulist", /"all" is not a CPU number \(give numbers; "all" and "N" read back as numbers\)/);
    expectFailure(check({ sysctls: { estCpulist: "3-1" } }), "sysctls.estCpulist", /ends before it starts/);
    expectFailure(check({ sysctls: { estCpulist: "8192" } }), "sysctls.estCpulist", /CPU 8192 is beyond 8191/);
    expectFailure(check({ sysctls: { estCpulist: "0-3:3/2" } }), "sysctls.estCpulist", /1 <= used <= size/);
    expectFailure(check({ sysctls: { estCpulist: 3 } }), "sysctls.estCpulist", /must be a CPU list/);
  });
  it("unknown fields are refused, with their section", () => {
    expectFailure(check({ sysctls: { connReuse: 1 } }), "sysctls.connReuse", /not a known property/);
    expectFailure(check({ timeouts: { tcpfin: 60 } }), "timeouts.tcpfin", /not a known property/);
  });
  it("ftp: 1..8 distinct ports 1..65535 (ip_vs_ftp's IP_VS_APP_MAX_PORTS), kept in the order given", () => {
    expect(expectOk(check({ ftp: { ports: [2121, 21] } })).ftp).toEqual({ ports: [2121, 21] });
    expectOk(check({ ftp: { ports: [1, 2, 3, 4, 5, 6, 7, 65535] } }));
    expectOk(check({ ftp: { ports: [21, U] } }));
    expectFailure(check({ ftp: { ports: [] } }), "ftp.ports", /ftp\.ports must list 1\.\.8 ports \(ip_vs_ftp takes at most 8\), not 0/);
    expectFailure(check({ ftp: { ports: [1, 2, 3, 4, 5, 6, 7, 8, 9] } }), "ftp.ports", /not 9/);
    expectFailure(check({ ftp: { ports: [21, 0] } }), "ftp.ports[1]", /must be an integer 1\.\.65535/);
    expectFailure(check({ ftp: { ports: [65536] } }), "ftp.ports[0]", /must be an integer 1\.\.65535/);
    expectFailure(check({ ftp: { ports: [21, 2121, 21] } }), "ftp.ports[2]", /ftp\.ports\[2\]: port 21 is listed twice \(also ftp\.ports\[0\]\)/);
    expect(check({ ftp: { ports: [21], port: 21 } }).failures).toEqual([expect.objectContaining({ property: expect.stringMatching(/^ftp/) })]);
    expectFailure(check({ ftp: [21] }), "ftp", /ftp must be \{ ports: \[21, …\] \}/);
  });
  it("timeouts 1..2147483 seconds (leave one out to not manage it)", () => {
    expectFailure(check({ timeouts: { tcp: 0 } }), "timeouts.tcp", /timeouts\.tcp must be an integer 1\.\.2147483/);
    expectFailure(check({ timeouts: { udp: 2147484 } }), "timeouts.udp", /1\.\.2147483/);
  });
  it("sync daemons: fields, ranges, one per state", () => {
    const d = (over: Record<string, unknown>) => check({ syncDaemons: [{ state: "master", interface: "eth0", syncId: 1, ...over }] });
    expectFailure(d({ state: "primary" }), "syncDaemons[0].state", /state must be one of "master", "backup"/);
    expectFailure(d({ syncId: 256 }), "syncDaemons[0].syncId", /0\.\.255/);
    expectFailure(d({ syncId: undefined }), "syncDaemons[0].syncId", /is required/);
    expectFailure(d({ interface: "a-very-long-ifname" }), "syncDaemons[0].interface", /1\.\.15 characters/);
    expectFailure(d({ interface: "eth0:1" }), "syncDaemons[0].interface", /without "\/", ":" or spaces/);
    expectFailure(d({ maxLength: 65508 }), "syncDaemons[0].maxLength", /1\.\.65507/);
    expectFailure(d({ group: "192.0.2.1" }), "syncDaemons[0].group", /multicast IPv4 or IPv6 address/);
    expectFailure(d({ port: 0 }), "syncDaemons[0].port", /1\.\.65535/);
    expectFailure(d({ ttl: 256 }), "syncDaemons[0].ttl", /1\.\.255/);
    expectOk(d({ maxLength: 1400, group: "224.0.0.81", port: 8848, ttl: 2 }));
    const two = check({ syncDaemons: [{ state: "backup", interface: "eth0", syncId: 1 }, { state: "backup", interface: "eth1", syncId: 2 }] });
    expectFailure(two, "syncDaemons[1].state", /at most one backup sync daemon \(also syncDaemons\[0\]\)/);
  });
  it("needs the director and the owner", () => {
    expectFailure(checkDirectorSettings(undefined, { owner: OWNER }), "director", /is required/);
    expectFailure(checkDirectorSettings(undefined, { director: director() }), "owner", /is required/);
    expectFailure(check({ owner: "prod" }), "owner", /organization\/project\/stack/);
  });
  it("never echoes the director's credentials in its messages", () => {
    const r = check({ director: director({ privateKey: "not a key", port: 0 }) });
    expect(r.failures.map((f) => f.property).sort()).toEqual(["director.port", "director.privateKey"]);
    expect(JSON.stringify(r.failures)).not.toContain("not a key");
  });
});

// The health checker's metrics directory (issue 27): the helper's own rule (protocol.CheckMetricsDir), at preview.
describe("healthMetricsDirectory", () => {
  it("a clean absolute path is kept and goes on the wire with the settings", async () => {
    const v = expectOk(check({ healthMetricsDirectory: "/var/lib/node_exporter/textfile_collector" }));
    expect(v.healthMetricsDirectory).toBe("/var/lib/node_exporter/textfile_collector");
    const { settingsWire } = await import("../../provider/resources/directorSettings/wire");
    expect(settingsWire(parseDirectorSettings(settings({ healthMetricsDirectory: "/run/metrics" }))).healthMetricsDirectory).toBe("/run/metrics");
    expect(settingsWire(parseDirectorSettings(settings()))).not.toHaveProperty("healthMetricsDirectory");
  });
  it("anything else is refused, naming the field and the rule", () => {
    for (const [bad, reason] of [
      ["relative/dir", /must be a clean absolute directory path/],
      ["/var/lib/../tmp", /must be a clean absolute directory path/],
      ["/var/lib/", /must be a clean absolute directory path/],
      ["/", /must be a clean absolute directory path/],
      ["/var/lib/with space", /must not hold white space, quotes, backslashes, % or control characters/],
      ["/var/lib/100%", /must not hold white space/],
      ["/var/lib/a\"b", /must not hold white space/],
      [`/${"a".repeat(1024)}`, /at most 1024 characters/],
      [42, /must be an absolute directory path/],
    ] as const)
      expectFailure(check({ healthMetricsDirectory: bad }), "healthMetricsDirectory", reason);
  });
  it("unknown at preview is fine", () => {
    expect(expectOk(check({ healthMetricsDirectory: U })).healthMetricsDirectory).toBe(U);
  });
});
