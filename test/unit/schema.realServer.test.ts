import { describe, expect, it } from "vitest";
import { checkRealServer, parseRealServer, parseVirtualService } from "../../provider/schema";
import { destKey, destSettings } from "../../provider/resources/realServer/wire";
import { serviceKey, serviceSettings } from "../../provider/resources/virtualService/wire";
import { U, expectFailure, expectOk, rs, serviceRef, vs } from "./fixtures";

const check = (inputs: Record<string, unknown>) => checkRealServer(undefined, inputs);
const fwmarkRef = (over: Record<string, unknown> = {}) => serviceRef({ protocol: undefined, address: undefined, port: undefined, fwmark: 7, ...over });

describe("RealServer defaults", () => {
  it("fills forwarding nat, weight 1, thresholds 0, adopt false", () => {
    expect(expectOk(check(rs()))).toMatchObject({ address: "10.0.0.11", port: 8080, forwarding: "nat", weight: 1, upperThreshold: 0, lowerThreshold: 0, adopt: false });
  });
  it("omitted port = the service port; 0 for fwmark services", () => {
    expect(expectOk(check(rs({ port: undefined }))).port).toBe(80);
    expect(expectOk(check(rs({ port: undefined, service: fwmarkRef() }))).port).toBe(0);
  });
  it("tunnel forwarding defaults to ipip without checksum; drain to 300 s", () => {
    expect(expectOk(check(rs({ port: undefined, forwarding: "tunnel" }))).tunnel).toEqual({ type: "ipip", checksum: "nocsum" });
    expect(expectOk(check(rs({ drain: {} }))).drain).toEqual({ timeoutSeconds: 300 });
  });
  it("normalises IPv6 addresses", () =>
    expect(expectOk(check(rs({ service: serviceRef({ family: "ipv6", address: "2001:db8::1" }), address: "2001:DB8:0::11" }))).address).toBe("2001:db8::11"));
});

describe("RealServer ownership inputs", () => {
  it("owner as for a VirtualService; takeover a boolean, default false", () => {
    expect(expectOk(check(rs({ owner: "acme/lb/prod" })))).toMatchObject({ owner: "acme/lb/prod", takeover: false });
    expect(expectOk(check(rs()))).not.toHaveProperty("owner");
    expectFailure(check(rs({ owner: "prod" })), "owner", /^owner must be "organization\/project\/stack"/);
    expectFailure(check(rs({ takeover: "no" })), "takeover", /^takeover must be true or false$/);
    expect(parseRealServer(rs({ owner: "acme/lb/prod", takeover: true }))).toMatchObject({ owner: "acme/lb/prod", takeover: true });
  });
  it("deleteForeignRealServers belongs to the VirtualService", () =>
    expectFailure(check(rs({ deleteForeignRealServers: true })), "deleteForeignRealServers", /not a known property/));
});

describe("RealServer at preview: the service's other-kind identity is unknown, not set", () => {
  // The engine sends every VirtualService output a RealServer references; the ones the service was not given (an
  // address service's fwmark, a fwmark service's protocol/address/port) are unknown until it exists.
  it("an address service with an unknown fwmark passes and keeps its identity", () =>
    expect(expectOk(check(rs({ service: serviceRef({ fwmark: U }) }))).service).not.toHaveProperty("fwmark"));
  it("a fwmark service with unknown protocol/address/port passes, port defaults to 0", () =>
    expect(expectOk(check(rs({ port: undefined, service: fwmarkRef({ protocol: U, address: U, port: U }) }))).port).toBe(0));
  it("a known address and a known fwmark together are still refused", () =>
    expect(check(rs({ service: serviceRef({ fwmark: 7 }) })).failures).toContainEqual({
      property: "service.address",
      reason: "service.address cannot be combined with service.fwmark",
    }));
});

describe("RealServer rules", () => {
  it("address: an IP, required", () => {
    expectFailure(check(rs({ address: "app-1.internal" })), "address", /IPv4 or IPv6 address/);
    expectFailure(check(rs({ address: undefined })), "address", /is required/);
  });
  it("address: a host the kernel takes as a dest, not link-local IPv6 or 0.0.0.0/8", () => {
    const v6 = serviceRef({ family: "ipv6", address: "2001:db8::1" });
    expectFailure(check(rs({ service: v6, address: "fe80::11" })), "address", /^address cannot be an IPv6 link-local address \(fe80::\/10\): the kernel refuses link-local real servers \(EINVAL\)/);
    expectFailure(check(rs({ service: v6, address: "FEBF::1" })), "address", /link-local/);
    expectOk(check(rs({ service: v6, address: "fec0::1" })));
    expectFailure(check(rs({ address: "0.1.2.3" })), "address", /^address cannot be in 0\.0\.0\.0\/8 \("this network", RFC 1122\)/);
    expectFailure(check(rs({ service: serviceRef({ address: "0.0.0.7" }) })), "service.address", /0\.0\.0\.0\/8/);
  });
  it("service.family must agree with service.address (not silently taken from the address)", () => {
    expectFailure(check(rs({ service: serviceRef({ family: "ipv6" }) })), "service.family", /^service\.family is ipv6 but service\.address 192\.0\.2\.10 is ipv4$/);
    expectFailure(check(rs({ service: serviceRef({ family: "ipv4", address: "2001:db8::1" }), address: "2001:db8::11" })), "service.family", /is ipv4 but service\.address 2001:db8::1 is ipv6/);
  });
  it("family must match the service unless tunnelling", () => {
    expectFailure(check(rs({ address: "2001:db8::11" })), "address", /is ipv6 but the service is ipv4: mixing families needs forwarding "tunnel"/);
    expectFailure(check(rs({ service: fwmarkRef({ family: "ipv6" }) })), "address", /is ipv4 but the service is ipv6/);
    expectOk(check(rs({ address: "2001:db8::11", forwarding: "tunnel", port: undefined })));
  });
  it("port 0..65535", () => expectFailure(check(rs({ port: 65536 })), "port", /0\.\.65535/));
  it("dr and tunnel on address services: port must equal the service port", () => {
    expectFailure(check(rs({ forwarding: "dr" })), "port", /port must equal the service port \(80\) with forwarding "dr"/);
    expectFailure(check(rs({ forwarding: "tunnel" })), "port", /with forwarding "tunnel"/);
    expectOk(check(rs({ forwarding: "dr", port: 80 })));
    expectOk(check(rs({ forwarding: "dr", port: 8080, service: fwmarkRef() })));
  });
  it("weight 0..65535", () => {
    expectFailure(check(rs({ weight: 65536 })), "weight", /weight must be an integer 0\.\.65535/);
    expectOk(check(rs({ weight: 0 })));
  });
  it("thresholds 0..2147483647, lower ≤ upper", () => {
    expectFailure(check(rs({ upperThreshold: 2147483648 })), "upperThreshold", /0\.\.2147483647/);
    expectFailure(check(rs({ upperThreshold: 10, lowerThreshold: 11 })), "lowerThreshold", /lowerThreshold \(11\) must not be greater than upperThreshold \(10\)/);
    // The kernel compares raw values: lower 5 with upper 0 (no limit) is ERANGE.
    expectFailure(check(rs({ lowerThreshold: 5 })), "lowerThreshold", /needs an upperThreshold/);
    expectOk(check(rs({ upperThreshold: 10, lowerThreshold: 10 })));
  });
  it("tunnel options only with tunnel forwarding", () =>
    expectFailure(check(rs({ tunnel: { type: "ipip" } })), "tunnel", /only used with forwarding "tunnel", not "nat"/));
  it("ipip: no port, no checksum", () => {
    const t = (tunnel: unknown) => check(rs({ port: undefined, forwarding: "tunnel", tunnel }));
    expectFailure(t({ type: "ipip", port: 6080 }), "tunnel.port", /only used by gue tunnels, not ipip/);
    expectFailure(t({ type: "ipip", checksum: "csum" }), "tunnel.checksum", /not available for ipip/);
    expectOk(t({ type: "ipip", checksum: "nocsum" }));
  });
  it("gue: port 1..65535 required, any checksum", () => {
    const t = (tunnel: unknown) => check(rs({ port: undefined, forwarding: "tunnel", tunnel }));
    expectFailure(t({ type: "gue" }), "tunnel.port", /required for gue/);
    expectFailure(t({ type: "gue", port: 0 }), "tunnel.port", /1\.\.65535/);
    expect(expectOk(t({ type: "gue", port: 6080, checksum: "remcsum" })).tunnel).toEqual({ type: "gue", port: 6080, checksum: "remcsum" });
  });
  it("gre: no port, nocsum or csum", () => {
    const t = (tunnel: unknown) => check(rs({ port: undefined, forwarding: "tunnel", tunnel }));
    expectFailure(t({ type: "gre", port: 1 }), "tunnel.port", /only used by gue/);
    expectFailure(t({ type: "gre", checksum: "remcsum" }), "tunnel.checksum", /only available for gue/);
    expectFailure(t({ type: "vxlan" }), "tunnel.type", /one of "ipip", "gue", "gre"/);
    expectOk(t({ type: "gre", checksum: "csum" }));
  });
  it("drain.timeoutSeconds 0..86400", () => expectFailure(check(rs({ drain: { timeoutSeconds: 86401 } })), "drain.timeoutSeconds", /0\.\.86400/));
  it("forwarding nat|dr|tunnel", () => expectFailure(check(rs({ forwarding: "masq" })), "forwarding", /one of "nat", "dr", "tunnel"/));
  it("validates the inherited service too", () => {
    expectFailure(check(rs({ service: serviceRef({ directors: [] }) })), "service.directors", /at least one director/);
    expectFailure(check(rs({ service: fwmarkRef({ protocol: "tcp" }) })), "service.protocol", /cannot be combined with service.fwmark/);
  });
});

describe("RealServer unknowns at preview", () => {
  it("an unknown service passes; port stays unknown (absent) until the service port is known", () => {
    const r = expectOk(check(rs({ service: U, port: undefined, forwarding: "dr" })));
    expect(r).not.toHaveProperty("port");
  });
  it("missing or unknown inherited fields pass check", () => {
    expectOk(check(rs({ service: { directors: U, family: U, address: U, port: U, protocol: U } })));
    expectOk(check(rs({ service: {}, address: "2001:db8::1" })));
  });
  it("rules skip unknown fields, others still apply", () => {
    expectOk(check(rs({ forwarding: U, tunnel: { type: "gue", port: 1 }, address: "2001:db8::1" })));
    expectOk(check(rs({ upperThreshold: U, lowerThreshold: 5 })));
    expectFailure(check(rs({ weight: U, forwarding: "dr" })), "port", /must equal the service port/);
  });
  it("the address and service family rules skip unknown values", () => {
    expectOk(check(rs({ address: U, service: serviceRef({ family: "ipv6", address: "2001:db8::1" }) })));
    expectOk(check(rs({ service: serviceRef({ family: U }) })));
    expectOk(check(rs({ service: serviceRef({ family: "ipv6", address: U }), address: "2001:db8::11" })));
  });
});

describe("parseRealServer and the helper mapping", () => {
  it("maps to the helper's ServiceKey / DestKey / DestSettings", () => {
    const r = parseRealServer(rs({ port: undefined, forwarding: "tunnel", tunnel: { type: "gue", port: 6080, checksum: "csum" }, weight: 5 }));
    expect(serviceKey(r.service)).toEqual({ family: "ipv4", protocol: "tcp", address: "192.0.2.10", port: 80 });
    expect(destKey(r)).toEqual({ address: "10.0.0.11", port: 80 });
    expect(destSettings(r)).toEqual({ forwarding: "tunnel", weight: 5, upperThreshold: 0, lowerThreshold: 0, tunnel: { type: "gue", port: 6080, checksum: "csum" } });
  });
  it("non-tunnel dests send tunnel null (a SET must clear an old tunnel); ipip port 0", () => {
    expect(destSettings(parseRealServer(rs())).tunnel).toBeNull();
    expect(destSettings(parseRealServer(rs({ port: undefined, forwarding: "tunnel" }))).tunnel).toEqual({ type: "ipip", port: 0, checksum: "nocsum" });
  });
  it("fwmark service key", () => expect(serviceKey(parseRealServer(rs({ service: fwmarkRef() })).service)).toEqual({ family: "ipv4", fwmark: 7 }));
  it("requires the inherited identity and directors at create time", () => {
    expect(() => parseRealServer(rs({ service: { family: "ipv4", fwmark: 7 } }))).toThrow(/service.directors: is required/);
    expect(() => parseRealServer(rs({ service: serviceRef({ port: undefined }), port: 1 }))).toThrow(/service: needs fwmark, or protocol \+ address \+ port/);
    expect(() => parseRealServer(rs({ service: U }))).toThrow(/service: is not known yet/);
  });
  it("service settings are complete: persistence null and engine empty when absent", () => {
    expect(serviceSettings(parseVirtualService(vs()))).toEqual({ scheduler: "wlc", schedulerFlags: [], persistence: null, persistenceEngine: "", onePacket: false });
    expect(serviceSettings(parseVirtualService(vs({ protocol: "udp", onePacket: true, persistence: { timeout: 30, engine: "sip" } }))))
      .toEqual({ scheduler: "wlc", schedulerFlags: [], persistence: { timeout: 30, netmask: "255.255.255.255" }, persistenceEngine: "sip", onePacket: true });
  });
});
