// Health checks (issue 27): every input rule refused at check (preview) naming the field and the rule, the defaults,
// the inheritance (own > pool > VirtualService, "none" switches off), and what ensureDest / ensureService carry.
import { describe, expect, it } from "vitest";
import { checkRealServer, checkRealServerPool, checkVirtualService, parseRealServer, parseRealServerPool, parseVirtualService } from "../../provider/schema";
import { healthCheckOf } from "../../provider/resources/realServer/wire";
import { diffRealServer } from "../../provider/resources/realServer/provider";
import { serviceHealth } from "../../provider/resources/virtualService/wire";
import { U, expectFailure, expectOk, fwmarkVs, rs, serviceRef, vs } from "./fixtures";

const onRs = (healthCheck: unknown, over: Record<string, unknown> = {}) => checkRealServer(undefined, rs({ healthCheck, ...over }));
const http = (over: Record<string, unknown> = {}) => ({ type: "http", ...over });

describe("healthCheck defaults", () => {
  it("fills interval 5, timeout 2, rise 2, fall 3, quiesce; http path /, GET, 200-399; port left to the real server's", () => {
    expect(expectOk(onRs(http())).healthCheck).toEqual({
      type: "http", intervalSeconds: 5, timeoutSeconds: 2, rise: 2, fall: 3, onFailure: "quiesce",
      http: { path: "/", method: "GET", expectStatus: "200-399" },
    });
  });
  it("dns: type A over udp", () =>
    expect(expectOk(onRs({ type: "dns", dns: { name: "example.org." } })).healthCheck).toMatchObject({ dns: { name: "example.org.", type: "A", transport: "udp" } }));
  it("the timeout defaults to half a short interval, so the default is never refused", () => {
    expect(expectOk(onRs({ type: "tcp", intervalSeconds: 1 })).healthCheck).toMatchObject({ intervalSeconds: 1, timeoutSeconds: 0.5 });
    expect(expectOk(onRs({ type: "tcp", intervalSeconds: 2 })).healthCheck).toMatchObject({ timeoutSeconds: 1 });
    expect(expectOk(onRs({ type: "tcp", intervalSeconds: 30 })).healthCheck).toMatchObject({ timeoutSeconds: 2 });
  });
  it("the wire object is complete: port = the real server's unless given", () => {
    expect(healthCheckOf(parseRealServer(rs({ healthCheck: { type: "tcp" } })))).toEqual({
      type: "tcp", port: 8080, intervalSeconds: 5, timeoutSeconds: 2, rise: 2, fall: 3, onFailure: "quiesce",
    });
    expect(healthCheckOf(parseRealServer(rs({ healthCheck: { type: "tcp", port: 9000 } })))?.port).toBe(9000);
    expect(healthCheckOf(parseRealServer(rs()))).toBeNull();
    expect(healthCheckOf(parseRealServer(rs({ healthCheck: { type: "none" } })))).toBeNull();
  });
});

describe("healthCheck rules, each refused at check naming the field", () => {
  const cases: [string, unknown, string, RegExp][] = [
    ["type required", {}, "healthCheck.type", /^is required$/],
    ["type unknown", { type: "icmp" }, "healthCheck.type", /^type must be one of "tcp", "http", "https", "dns", "none"$/],
    ["port 0", { type: "tcp", port: 0 }, "healthCheck.port", /^port must be an integer 1..65535$/],
    ["port 65536", { type: "tcp", port: 65536 }, "healthCheck.port", /^port must be an integer 1..65535$/],
    ["interval 0", { type: "tcp", intervalSeconds: 0 }, "healthCheck.intervalSeconds", /^intervalSeconds must be a number of seconds 1..3600$/],
    ["interval 3601", { type: "tcp", intervalSeconds: 3601 }, "healthCheck.intervalSeconds", /1..3600/],
    ["timeout 0", { type: "tcp", timeoutSeconds: 0 }, "healthCheck.timeoutSeconds", /^timeoutSeconds must be a number of seconds greater than 0/],
    ["timeout = interval", { type: "tcp", intervalSeconds: 2, timeoutSeconds: 2 }, "healthCheck.timeoutSeconds", /^timeoutSeconds \(2\) must be less than intervalSeconds \(2\)/],
    ["rise 0", { type: "tcp", rise: 0 }, "healthCheck.rise", /^rise must be an integer 1..100$/],
    ["rise 101", { type: "tcp", rise: 101 }, "healthCheck.rise", /1..100/],
    ["fall 0", { type: "tcp", fall: 0 }, "healthCheck.fall", /^fall must be an integer 1..100$/],
    ["fall 1.5", { type: "tcp", fall: 1.5 }, "healthCheck.fall", /^fall must be an integer 1..100$/],
    ["onFailure", { type: "tcp", onFailure: "drop" }, "healthCheck.onFailure", /^onFailure must be one of "quiesce", "remove"$/],
    ["http on tcp", { type: "tcp", http: {} }, "healthCheck.http", /^http options are only used with type "http" or "https", not "tcp"$/],
    ["dns on http", { type: "http", dns: { name: "a." } }, "healthCheck.dns", /^dns options are only used with type "dns", not "http"$/],
    ["dns missing", { type: "dns" }, "healthCheck.dns", /^dns \(with dns.name, the name to ask for\) is required for type "dns"$/],
    ["dns.name missing", { type: "dns", dns: {} }, "healthCheck.dns.name", /^is required$/],
    ["dns.name empty", { type: "dns", dns: { name: "" } }, "healthCheck.dns.name", /domain name of 1..253 characters/],
    ["dns.type", { type: "dns", dns: { name: "a.", type: "PTR" } }, "healthCheck.dns.type", /^type must be one of "A", "AAAA"/],
    ["dns.transport", { type: "dns", dns: { name: "a.", transport: "tls" } }, "healthCheck.dns.transport", /^transport must be one of "udp", "tcp"$/],
    ["path without /", http({ http: { path: "health" } }), "healthCheck.http.path", /must start with "\/", hold no whitespace and be at most 1024 bytes/],
    ["path with a space", http({ http: { path: "/a b" } }), "healthCheck.http.path", /hold no whitespace/],
    ["path too long", http({ http: { path: "/" + "a".repeat(1024) } }), "healthCheck.http.path", /at most 1024 bytes/],
    ["method", http({ http: { method: "POST" } }), "healthCheck.http.method", /^method must be one of "GET", "HEAD"$/],
    ["host with /", http({ http: { host: "a/b" } }), "healthCheck.http.host", /must be a host name/],
    ["expectStatus 99", http({ http: { expectStatus: "99" } }), "healthCheck.http.expectStatus", /^expectStatus must be status codes and ranges of 100..599 .*\("99" is not one\)$/],
    ["expectStatus 600", http({ http: { expectStatus: "200,600" } }), "healthCheck.http.expectStatus", /"600" is not one/],
    ["expectStatus reversed", http({ http: { expectStatus: "302-301" } }), "healthCheck.http.expectStatus", /"302-301" is not one/],
    ["expectStatus words", http({ http: { expectStatus: "ok" } }), "healthCheck.http.expectStatus", /"ok" is not one/],
    ["expectBody too long", http({ http: { expectBody: "x".repeat(1025) } }), "healthCheck.http.expectBody", /^expectBody must be at most 1024 bytes, not 1025$/],
    ["expectBody with HEAD", http({ http: { method: "HEAD", expectBody: "ok" } }), "healthCheck.http.expectBody", /^expectBody needs method "GET"/],
    ["none with fields", { type: "none", fall: 2 }, "healthCheck.type", /^type "none" switches the inherited check off and takes no other fields \(fall given\)$/],
    ["unknown field", { type: "tcp", retries: 3 }, "healthCheck.retries", /not a known property/],
  ];
  for (const [name, check, property, reason] of cases) it(name, () => expectFailure(onRs(check), property, reason));

  it("accepts what the helper accepts: status lists, fractions, the bounds", () => {
    expectOk(onRs(http({ http: { expectStatus: "200,301-302", path: "/healthz?x=1", method: "HEAD", host: "www.example.org" } })));
    expectOk(onRs({ type: "https", intervalSeconds: 3600, timeoutSeconds: 0.001, rise: 100, fall: 1, port: 65535 }));
    expectOk(onRs({ type: "tcp", intervalSeconds: 1.5, timeoutSeconds: 1.2 }));
  });
  it("the same rules on a VirtualService, a pool and a pool member", () => {
    expectFailure(checkVirtualService(undefined, vs({ healthCheck: { type: "tcp", rise: 0 } })), "healthCheck.rise", /1..100/);
    expectFailure(checkRealServerPool(undefined, { service: serviceRef(), healthCheck: { type: "tcp", fall: 0 }, members: [] }), "healthCheck.fall", /1..100/);
    expectFailure(checkRealServerPool(undefined, { service: serviceRef(), members: [{ address: "10.0.0.1", healthCheck: { type: "dns" } }] }), "members[0].healthCheck.dns", /required for type "dns"/);
  });
  it("unknown at preview: passes, and the timeout's default waits for the interval", () => {
    expect(expectOk(onRs(U)).healthCheck).toBe(U);
    expect(expectOk(onRs({ type: "tcp", intervalSeconds: U })).healthCheck).toMatchObject({ timeoutSeconds: U });
    expectOk(onRs({ type: U, http: {} }));
  });
  it("port is required where the real server's is 0 (fwmark services), also for an inherited check", () => {
    const fw = serviceRef({ protocol: undefined, address: undefined, port: undefined, fwmark: 7 });
    expectFailure(onRs({ type: "tcp" }, { port: undefined, service: fw }), "healthCheck.port", /^port \(1..65535\) is required: the real server's port is 0/);
    expectFailure(checkRealServer(undefined, rs({ port: undefined, service: { ...fw, healthCheck: { type: "tcp" } } })), "healthCheck.port", /the check inherited from the VirtualService cannot default/);
    expectOk(onRs({ type: "tcp", port: 80 }, { port: undefined, service: fw }));
  });
});

describe("healthCheck inheritance: own > pool > VirtualService, whole objects; none switches off", () => {
  const svcCheck = { type: "tcp", intervalSeconds: 10 };
  const withSvc = (over: Record<string, unknown> = {}) => rs({ service: serviceRef({ healthCheck: expectOk(checkVirtualService(undefined, vs({ healthCheck: svcCheck }))).healthCheck }), ...over });
  it("a RealServer without its own inherits the VirtualService's; its own wins; none switches it off", () => {
    expect(parseRealServer(withSvc()).healthCheck).toMatchObject({ type: "tcp", intervalSeconds: 10 });
    expect(parseRealServer(withSvc({ healthCheck: { type: "http" } })).healthCheck).toMatchObject({ type: "http", intervalSeconds: 5 });
    expect(healthCheckOf(parseRealServer(withSvc({ healthCheck: { type: "none" } })))).toBeNull();
  });
  it("normalising the recorded form again gives the same (the check in effect is recorded as the real server's own)", () => {
    const once = expectOk(checkRealServer(undefined, withSvc({ healthCheck: { type: "none" } })));
    expect(expectOk(checkRealServer(undefined, once))).toEqual(once);
  });
  it("a change of the VirtualService's check is an update in place of its real servers, never a replace", () => {
    const olds = expectOk(checkRealServer(undefined, withSvc()));
    const news = rs({ service: serviceRef({ healthCheck: { type: "tcp", intervalSeconds: 20 } }) });
    expect(diffRealServer("id", olds, news)).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });
    expect(diffRealServer("id", olds, withSvc())).toMatchObject({ changes: false });
    expect(diffRealServer("id", olds, rs({ healthCheck: { type: "tcp", intervalSeconds: 10, rise: 3 } }))).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });
  });
  it("pool members: own > pool default > the service's", () => {
    const p = parseRealServerPool({
      service: serviceRef({ healthCheck: { type: "tcp" } }),
      healthCheck: { type: "http", http: { path: "/health" } },
      members: [{ address: "10.0.0.1" }, { address: "10.0.0.2", healthCheck: { type: "none" } }, { address: "10.0.0.3", healthCheck: { type: "tcp", port: 81 } }],
    });
    expect(p.members["10.0.0.1:80"]!.healthCheck).toMatchObject({ type: "http", http: { path: "/health" } });
    expect(p.members["10.0.0.2:80"]!.healthCheck).toEqual({ type: "none" });
    expect(p.members["10.0.0.3:80"]!.healthCheck).toMatchObject({ type: "tcp", port: 81 });
    const noPool = parseRealServerPool({ service: serviceRef({ healthCheck: { type: "tcp" } }), members: [{ address: "10.0.0.1" }] });
    expect(noPool.members["10.0.0.1:80"]!.healthCheck).toMatchObject({ type: "tcp" });
  });
});

describe("minHealthy and sorryServer (VirtualService only)", () => {
  const check = (over: Record<string, unknown>) => checkVirtualService(undefined, vs(over));
  it('minHealthy defaults to "50%"; counts and percentages are sent as given', () => {
    expect(serviceHealth(parseVirtualService(vs()))).toEqual({ minHealthy: "50%", sorryServer: null });
    expect(expectOk(check({ minHealthy: 0 })).minHealthy).toBe(0);
    expect(expectOk(check({ minHealthy: "100%" })).minHealthy).toBe("100%");
  });
  for (const bad of [-1, 65536, 1.5, "101%", "50", "5 %", "-1%", true])
    it(`minHealthy ${JSON.stringify(bad)} is refused`, () =>
      expectFailure(check({ minHealthy: bad }), "minHealthy", /^minHealthy must be a whole number of real servers 0..65535 or a percentage "0%".."100%"/));
  it("sorryServer: port = the service's, forwarding nat", () =>
    expect(serviceHealth(parseVirtualService(vs({ sorryServer: { address: "10.0.0.99" } })))).toEqual({ minHealthy: "50%", sorryServer: { address: "10.0.0.99", port: 80, forwarding: "nat" } }));
  it("sorryServer rules", () => {
    expectFailure(check({ sorryServer: { address: "2001:db8::9" } }), "sorryServer.address", /^address 2001:db8::9 is ipv6 but the service is ipv4$/);
    expectFailure(check({ sorryServer: { address: "example.org" } }), "sorryServer.address", /^address must be an IPv4 or IPv6 address/);
    expectFailure(check({ sorryServer: { address: "10.0.0.9", port: 0 } }), "sorryServer.port", /^port must be an integer 1..65535$/);
    expectFailure(check({ sorryServer: { address: "10.0.0.9", forwarding: "local" } }), "sorryServer.forwarding", /^forwarding must be one of "nat", "dr", "tunnel"$/);
    expectFailure(check({ sorryServer: { address: "10.0.0.9", port: 8080, forwarding: "dr" } }), "sorryServer.port", /must equal the service port \(80\) with forwarding "dr"/);
    expectFailure(checkVirtualService(undefined, fwmarkVs({ sorryServer: { address: "10.0.0.9" } })), "sorryServer.port", /required for a fwmark service/);
    expectFailure(check({ sorryServer: { address: "10.0.0.9", weight: 1 } }), "sorryServer.weight", /not a known property/);
  });
  it("minHealthy and sorryServer are not real-server inputs", () => {
    expectFailure(checkRealServer(undefined, rs({ minHealthy: 1 })), "minHealthy", /not a known property/);
  });
});
