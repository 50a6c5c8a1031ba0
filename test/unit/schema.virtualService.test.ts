import { describe, expect, it } from "vitest";
import { checkVirtualService, parseVirtualService } from "../../provider/schema";
import { U, director, expectFailure, expectOk, fwmarkVs, vs } from "./fixtures";

const check = (inputs: Record<string, unknown>) => checkVirtualService(undefined, inputs);

describe("VirtualService defaults and normalisation", () => {
  it("fills defaults and derives the family", () => {
    const v = expectOk(check(vs({ protocol: undefined, __provider: "serialized" })));
    expect(v).toEqual({
      directors: [expect.objectContaining({ host: "203.0.113.5", port: 22, sudo: true })],
      family: "ipv4", protocol: "tcp", address: "192.0.2.10", port: 80,
      scheduler: "wlc", schedulerFlags: [], onePacket: false, bindAddress: false, adopt: false, takeover: false, deleteForeignRealServers: false, minHealthy: "50%",
      // Always an output, so a real server reading it at preview sees it known.
      healthCheck: { type: "none" },
    });
  });
  it("writes IPv6 in the compressed lowercase form the kernel reports", () => {
    const v = expectOk(check(vs({ address: "2001:0DB8:0:0:0:0:0:010" })));
    expect(v).toMatchObject({ family: "ipv6", address: "2001:db8::10" });
  });
  it("fwmark services default to ipv4 and carry no protocol/address/port", () => {
    expect(expectOk(check(fwmarkVs()))).toMatchObject({ family: "ipv4", fwmark: 7 });
    expect(expectOk(check(fwmarkVs()))).not.toHaveProperty("protocol");
    expect(expectOk(check(fwmarkVs({ family: "ipv6" })))).toMatchObject({ family: "ipv6", fwmark: 7 });
  });
  it("persistence defaults: timeout 360, whole-address netmask per family; v6 prefix kept as a string", () => {
    expect(expectOk(check(vs({ persistence: {} }))).persistence).toEqual({ timeout: 360, netmask: "255.255.255.255" });
    expect(expectOk(check(vs({ address: "2001:db8::1", persistence: { netmask: 64, engine: undefined } }))).persistence).toEqual({ timeout: 360, netmask: "64" });
    expect(expectOk(check(vs({ protocol: "udp", persistence: { timeout: 60, netmask: "255.255.255.0", engine: "sip" } }))).persistence)
      .toEqual({ timeout: 60, netmask: "255.255.255.0", engine: "sip" });
  });
  it("names scheduler flags as ipvsadm prints them for the scheduler, in kernel-bit order", () => {
    expect(expectOk(check(vs({ scheduler: "sh", schedulerFlags: ["flag-2", "sh-fallback"] }))).schedulerFlags).toEqual(["sh-fallback", "sh-port"]);
    expect(expectOk(check(vs({ scheduler: "mh", schedulerFlags: ["flag-3", "mh-port"] }))).schedulerFlags).toEqual(["mh-port", "flag-3"]);
    expect(expectOk(check(vs({ scheduler: "rr", schedulerFlags: ["flag-1"] }))).schedulerFlags).toEqual(["flag-1"]);
  });
  it("treats null as not set", () => expect(expectOk(check(vs({ persistence: null, fwmark: null })))).not.toHaveProperty("persistence"));
  it("accepts every scheduler and protocol", () => {
    for (const scheduler of ["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"]) expectOk(check(vs({ scheduler })));
    for (const protocol of ["tcp", "udp", "sctp"]) expectOk(check(vs({ protocol })));
  });
});

describe("VirtualService rules", () => {
  it("needs an identity", () => expectFailure(check(vs({ address: undefined })), "address", /set address \(with protocol and port\) or fwmark/));
  it("needs a port with an address", () => expectFailure(check(vs({ port: undefined })), "port", /port is required/));
  it("refuses host names and non-unicast VIPs", () => {
    expectFailure(check(vs({ address: "www.example.com" })), "address", /IPv4 or IPv6 address.*no host names/);
    expectFailure(check(vs({ address: "fe80::1%eth0" })), "address", /IPv4 or IPv6 address/);
    expectFailure(check(vs({ address: "01.2.3.4" })), "address", /IPv4 or IPv6 address/);
    expectFailure(check(vs({ address: "239.1.1.1" })), "address", /multicast/);
    expectFailure(check(vs({ address: "0.0.0.0" })), "address", /unspecified/);
    expectFailure(check(vs({ address: "0.10.0.1" })), "address", /^address cannot be in 0\.0\.0\.0\/8 \("this network", RFC 1122\): no host has such an address$/);
    expectFailure(check(vs({ address: "::ffff:192.0.2.1" })), "address", /IPv4-mapped/);
  });
  it("protocol tcp|udp|sctp", () => expectFailure(check(vs({ protocol: "icmp" })), "protocol", /one of "tcp", "udp", "sctp"/));
  it("port 0..65535", () => expectFailure(check(vs({ port: 70000 })), "port", /0\.\.65535/));
  it("port 0 only for persistent services", () => {
    expectFailure(check(vs({ port: 0 })), "port", /^port 0 is only allowed for persistent services \(ipvsadm rule\)$/);
    expectOk(check(vs({ port: 0, persistence: {} })));
  });
  it("family must agree with the address", () => expectFailure(check(vs({ family: "ipv6" })), "family", /family is ipv6 but address 192\.0\.2\.10 is ipv4/));
  it("fwmark 1..4294967295", () => {
    expectFailure(check(fwmarkVs({ fwmark: 0 })), "fwmark", /1\.\.4294967295/);
    expectOk(check(fwmarkVs({ fwmark: 4294967295 })));
  });
  it("fwmark excludes protocol, address and port", () => {
    expectFailure(check(fwmarkVs({ port: 80 })), "port", /cannot be combined with fwmark/);
    expectFailure(check(fwmarkVs({ address: "192.0.2.1" })), "address", /cannot be combined with fwmark/);
    expectFailure(check(fwmarkVs({ protocol: "udp" })), "protocol", /cannot be combined with fwmark/);
  });
  it("scheduler names", () => expectFailure(check(vs({ scheduler: "random" })), "scheduler", /one of "rr", "wrr"/));
  it("scheduler flags must fit the scheduler", () => {
    expectFailure(check(vs({ scheduler: "wlc", schedulerFlags: ["sh-port"] })), "schedulerFlags[0]", /sh-port only applies to the sh scheduler, not wlc \(ipvsadm rule\)/);
    expectFailure(check(vs({ scheduler: "sh", schedulerFlags: ["mh-fallback"] })), "schedulerFlags[0]", /only applies to the mh scheduler/);
    expectFailure(check(vs({ schedulerFlags: ["flag-9"] })), "schedulerFlags[0]", /must be one of/);
  });
  it("scheduler flags: no duplicates, also not under two names", () => {
    expectFailure(check(vs({ schedulerFlags: ["flag-1", "flag-1"] })), "schedulerFlags[1]", /flag-1 is listed twice/);
    expectFailure(check(vs({ scheduler: "sh", schedulerFlags: ["sh-fallback", "flag-1"] })), "schedulerFlags[1]", /sh-fallback and flag-1 set the same kernel flag/);
  });
  it("persistence timeout 1..2678400", () => {
    expectFailure(check(vs({ persistence: { timeout: 0 } })), "persistence.timeout", /1\.\.2678400/);
    expectFailure(check(vs({ persistence: { timeout: 2678401 } })), "persistence.timeout", /1\.\.2678400/);
  });
  it("netmask only with persistence", () => expectFailure(check(vs({ netmask: "255.255.255.0" })), "netmask", /belongs in persistence.*only meaningful for persistent services/));
  it("IPv4 netmask: contiguous dotted mask", () => {
    expectFailure(check(vs({ persistence: { netmask: "255.0.255.0" } })), "persistence.netmask", /contiguous IPv4 mask/);
    expectFailure(check(vs({ persistence: { netmask: 24 } })), "persistence.netmask", /contiguous IPv4 mask/);
    expectFailure(check(vs({ persistence: { netmask: "0.0.0.0" } })), "persistence.netmask", /contiguous IPv4 mask/);
    expectOk(check(vs({ persistence: { netmask: "255.255.255.128" } })));
  });
  it("IPv6 netmask: prefix 1..128", () => {
    expectFailure(check(vs({ address: "2001:db8::1", persistence: { netmask: 129 } })), "persistence.netmask", /prefix length 1\.\.128/);
    expectFailure(check(vs({ address: "2001:db8::1", persistence: { netmask: "ffff::" } })), "persistence.netmask", /prefix length 1\.\.128/);
    expect(expectOk(check(vs({ address: "2001:db8::1", persistence: { netmask: "/48" } }))).persistence).toMatchObject({ netmask: "48" });
  });
  it("persistence engine: only sip, only UDP or fwmark", () => {
    expectFailure(check(vs({ protocol: "udp", persistence: { engine: "http" } })), "persistence.engine", /must be "sip"/);
    expectFailure(check(vs({ persistence: { engine: "sip" } })), "persistence.engine", /"sip" only works for UDP \(or fwmark\) services, not tcp/);
    expectOk(check(fwmarkVs({ persistence: { engine: "sip" } })));
  });
  it("onePacket only UDP or fwmark", () => {
    expectFailure(check(vs({ onePacket: true })), "onePacket", /only supported for UDP or fwmark services, not tcp \(ipvsadm rule\)/);
    expectFailure(check(vs({ protocol: "sctp", onePacket: true })), "onePacket", /not sctp/);
    expectOk(check(vs({ protocol: "udp", onePacket: true })));
    expectOk(check(fwmarkVs({ onePacket: true })));
  });
  it("booleans are booleans", () => expectFailure(check(vs({ adopt: "yes" })), "adopt", /true or false/));
  it("reports every field failure at once", () => {
    const r = check(vs({ port: -1, scheduler: "x", adopt: 1 }));
    expect(r.failures.map((f) => f.property).sort()).toEqual(["adopt", "port", "scheduler"]);
  });
});

describe("VirtualService ownership inputs", () => {
  it("owner is organization/project/stack, absent for state from before the ledger", () => {
    expect(expectOk(check(vs({ owner: "acme/lb/prod" }))).owner).toBe("acme/lb/prod");
    expect(expectOk(check(vs({ owner: "my-org/edge.lb/dev_2" }))).owner).toBe("my-org/edge.lb/dev_2");
    expect(expectOk(check(vs()))).not.toHaveProperty("owner");
    expect(expectOk(check(vs({ owner: U }))).owner).toBe(U);
  });
  it("refuses an owner the ledger cannot record, naming the field and the rule", () => {
    for (const owner of ["acme/lb", "acme//prod", "acme/lb/prod/x", "acme/lb/pr od", "acme/lb/prød", ""])
      expectFailure(check(vs({ owner })), "owner", /^owner must be "organization\/project\/stack": three non-empty parts of letters, digits, "\.", "_" and "-", not "/);
    expectFailure(check(vs({ owner: `a/b/${"c".repeat(297)}` })), "owner", /^owner must be at most 300 characters, not 301$/);
    expectOk(check(vs({ owner: `a/b/${"c".repeat(296)}` })));
    expectFailure(check(vs({ owner: 7 })), "owner", /^owner must be a string "organization\/project\/stack"/);
  });
  it("takeover and deleteForeignRealServers are booleans, default false", () => {
    expect(expectOk(check(vs({ takeover: true, deleteForeignRealServers: true })))).toMatchObject({ takeover: true, deleteForeignRealServers: true });
    expectFailure(check(vs({ takeover: "yes" })), "takeover", /^takeover must be true or false$/);
    expectFailure(check(vs({ deleteForeignRealServers: 1 })), "deleteForeignRealServers", /^deleteForeignRealServers must be true or false$/);
  });
  it("parse keeps them for the ops", () =>
    expect(parseVirtualService(vs({ owner: "acme/lb/prod", takeover: true }))).toMatchObject({ owner: "acme/lb/prod", takeover: true, deleteForeignRealServers: false }));
});

describe("VirtualService unknowns at preview", () => {
  it("unknown identity passes and leaves derived values unknown", () => {
    const v = expectOk(check(vs({ address: U, port: U, persistence: {} })));
    expect(v).toMatchObject({ address: U, family: U, port: U, persistence: { timeout: 360, netmask: U } });
  });
  it("an unknown field does not hide another field's failure", () => {
    expectFailure(check(vs({ address: U, onePacket: true })), "onePacket", /only supported for UDP or fwmark/);
    expectFailure(check(vs({ port: U, scheduler: "rr", schedulerFlags: ["sh-port"] })), "schedulerFlags[0]", /only applies to the sh scheduler/);
  });
  it("rules that depend on an unknown field skip themselves", () => {
    expectOk(check(vs({ protocol: U, onePacket: true })));
    expectOk(check(vs({ port: 0, persistence: U })));
    expectOk(check(vs({ scheduler: U, schedulerFlags: ["sh-port"] })));
    expectOk(check(vs({ address: U, persistence: { netmask: "64" } })));
    expectOk(check(vs({ schedulerFlags: [U, "flag-1"], onePacket: U, adopt: U })));
    expectOk(check(fwmarkVs({ fwmark: U, family: U })));
  });
});

describe("parseVirtualService", () => {
  it("returns the normalised service", () => {
    const v = parseVirtualService(vs({ address: "2001:DB8::1", directors: [director({ user: "root" })] }));
    expect(v).toMatchObject({ family: "ipv6", address: "2001:db8::1", port: 80, scheduler: "wlc" });
    expect(v.directors[0]).toMatchObject({ sudo: false, port: 22 });
  });
  it("throws with every problem, property first", () =>
    expect(() => parseVirtualService(vs({ port: 0, directors: [] }))).toThrow(/invalid VirtualService inputs: directors: directors must list at least one director/));
  it("refuses unknown values", () => expect(() => parseVirtualService(vs({ port: U, persistence: {} }))).toThrow(/port: is not known yet/));
});
