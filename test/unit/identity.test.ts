import { describe, expect, it } from "vitest";
import { parseRealServerId, parseVirtualServiceId, realServerId, virtualServiceId } from "../../provider/identity";
import { parseRealServer, parseVirtualService } from "../../provider/schema";
import { destKey } from "../../provider/resources/realServer/wire";
import { serviceKey } from "../../provider/resources/virtualService/wire";
import { director, fwmarkVs, rs, serviceRef, vs } from "./fixtures";

const pair = [director({ host: "10.0.0.6" }), director({ host: "10.0.0.5" })];

describe("VirtualService ids", () => {
  it("name the service and every director, directors sorted", () => {
    const v = parseVirtualService(vs({ directors: pair }));
    expect(virtualServiceId(serviceKey(v), v.directors)).toBe("tcp/192.0.2.10:80@10.0.0.5:22,10.0.0.6:22");
  });
  it("fwmark and IPv6 forms", () => {
    const f = parseVirtualService(fwmarkVs({ family: "ipv6", directors: [director({ host: "2001:db8::5", port: 2222 })] }));
    expect(virtualServiceId(serviceKey(f), f.directors)).toBe("fwmark/ipv6/7@[2001:db8::5]:2222");
    const v6 = parseVirtualService(vs({ protocol: "udp", address: "2001:db8::1", port: 53 }));
    expect(virtualServiceId(serviceKey(v6), v6.directors)).toBe("udp/[2001:db8::1]:53@203.0.113.5:22");
  });
  it("round trip", () => {
    for (const inputs of [vs({ directors: pair }), fwmarkVs({ fwmark: 4294967295 }), vs({ protocol: "sctp", address: "2001:db8::a", directors: [director({ host: "director.example" })] })]) {
      const v = parseVirtualService(inputs);
      const parsed = parseVirtualServiceId(virtualServiceId(serviceKey(v), v.directors));
      expect(parsed.service).toEqual(serviceKey(v));
      expect(parsed.directors).toEqual(expect.arrayContaining(v.directors.map((d) => ({ host: d.host, port: d.port }))));
      expect(parsed.directors).toHaveLength(v.directors.length);
    }
  });
  it("refuses malformed ids with a message showing the expected form", () => {
    expect(() => parseVirtualServiceId("tcp/192.0.2.10:80")).toThrow(/no @ before the directors.*expected e\.g\. tcp\/192\.0\.2\.10:80@10\.0\.0\.5:22/);
    expect(() => parseVirtualServiceId("icmp/192.0.2.10:80@h:22")).toThrow(/protocol "icmp"/);
    expect(() => parseVirtualServiceId("tcp/host:80@h:22")).toThrow(/does not hold an IP address/);
    expect(() => parseVirtualServiceId("fwmark/ipv4/0@h:22")).toThrow(/fwmark "0"/);
    expect(() => parseVirtualServiceId("tcp/192.0.2.10:80/10.0.0.1:80@h:22")).toThrow(/3 "\/"-separated parts, expected 2/);
    expect(() => parseVirtualServiceId("tcp/192.0.2.10:80@")).toThrow(/no directors/);
  });
});

describe("RealServer ids", () => {
  it("service identity / dest @ directors", () => {
    const r = parseRealServer(rs({ service: serviceRef({ directors: pair }) }));
    expect(realServerId(serviceKey(r.service), destKey(r), r.service.directors)).toBe("tcp/192.0.2.10:80/10.0.0.11:8080@10.0.0.5:22,10.0.0.6:22");
  });
  it("round trip, including fwmark services and IPv6 dests", () => {
    const r = parseRealServer(rs({ service: serviceRef({ protocol: undefined, address: undefined, port: undefined, fwmark: 7 }), address: "2001:db8::11", forwarding: "tunnel", port: undefined }));
    const id = realServerId(serviceKey(r.service), destKey(r), r.service.directors);
    expect(id).toBe("fwmark/ipv4/7/[2001:db8::11]:0@203.0.113.5:22");
    expect(parseRealServerId(id)).toEqual({ service: { family: "ipv4", fwmark: 7 }, dest: { address: "2001:db8::11", port: 0 }, directors: [{ host: "203.0.113.5", port: 22 }] });
  });
  it("refuses a VirtualService id", () => expect(() => parseRealServerId("tcp/192.0.2.10:80@h:22")).toThrow(/not a RealServer id/));
});
