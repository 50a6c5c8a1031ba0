// RealServerHost (provider/resources/realServerHost): input rules checked at preview naming field and rule, the VIP
// list derived from vips and services, the ops sent, and drift read back (a VIP removed by hand, a reset sysctl).
import { describe, expect, it } from "vitest";
import { diffRealServerHost, makeRealServerHostProvider } from "../../provider/resources/realServerHost/provider";
import { checkRealServerHost, parseRealServerHost } from "../../provider/resources/realServerHost/schema";
import type { DirectorOps } from "../../provider/helperClient";
import type { Op } from "../../provider/protocol";
import { U, director, expectFailure, expectOk } from "./fixtures";

const OWNER = "acme/lb/prod";
const URN = "urn:pulumi:prod::lb::pulumi-nodejs:dynamic/ipvs:RealServerHost::rs1";
const args = (over: Record<string, unknown> = {}) => ({
  host: director({ host: "10.0.0.11" }), forwarding: "dr", vips: ["192.0.2.10"], owner: OWNER, resourceUrn: URN, ...over,
});
const check = (over: Record<string, unknown> = {}) => checkRealServerHost(undefined, args(over));
const ARP = { "net.ipv4.conf.all.arp_announce": 2, "net.ipv4.conf.all.arp_ignore": 1 };

describe("RealServerHost inputs", () => {
  it("merges vips and the services' addresses, each once, and derives the ARP sysctls from an IPv4 VIP", () => {
    const v = expectOk(check({ vips: ["192.0.2.10", "2001:DB8::10"], services: [{ address: "192.0.2.10" }, { address: "192.0.2.20" }] }));
    expect(v.vips).toEqual(["192.0.2.10", "2001:db8::10", "192.0.2.20"]);
    expect(v.sysctls).toEqual(ARP);
    expect(v).not.toHaveProperty("services");
    expect(expectOk(check({ vips: ["2001:db8::10"] })).sysctls).toEqual({}); // IPv6: no ARP, nothing to set
  });
  it("tunnel (ipip) adds tunl0's rp_filter to what is set", () => {
    const v = expectOk(check({ forwarding: "tunnel", tunnel: { type: "ipip" } }));
    expect(v.sysctls).toEqual({ ...ARP, "net.ipv4.conf.tunl0.rp_filter": 0 });
    expect(v.tunnel).toEqual({ type: "ipip" });
  });
  it("tunnel (gre) adds gre0's rp_filter to what is set", () => {
    const v = expectOk(check({ forwarding: "tunnel", tunnel: { type: "gre" } }));
    expect(v.sysctls).toEqual({ ...ARP, "net.ipv4.conf.gre0.rp_filter": 0 });
    expect(v.tunnel).toEqual({ type: "gre" });
  });
  it("refuses bad input naming the field and the rule", () => {
    expectFailure(check({ vips: ["vip.example"] }), "vips[0]", /must be an IPv4 or IPv6 address/);
    expectFailure(check({ vips: ["224.0.0.5"] }), "vips[0]", /multicast/);
    expectFailure(check({ vips: ["192.0.2.10", "192.0.2.10"] }), "vips[1]", /listed twice \(also vips\[0\]\)/);
    expectFailure(check({ vips: [], services: [] }), "vips", /give vips or services/);
    expectFailure(check({ vips: undefined }), "vips", /give vips or services/);
    expectFailure(check({ forwarding: "nat" }), "forwarding", /forwarding/);
    expectFailure(check({ tunnel: { type: "ipip" } }), "tunnel", /tunnel options need forwarding "tunnel", not "dr"/);
    expectFailure(check({ forwarding: "tunnel" }), "tunnel", /tunnel is required with forwarding "tunnel"/);
    expectFailure(check({ forwarding: "tunnel", tunnel: { type: "gue", port: 5555 } }), "tunnel.type", /tunnel.type "gue" is not prepared by RealServerHost yet \(only "ipip" and "gre"\)/);
    expectFailure(check({ forwarding: "tunnel", tunnel: { type: "gre", port: 5555 } }), "tunnel.port", /only for tunnel.type "gue", not "gre"/);
    expectFailure(check({ forwarding: "tunnel", tunnel: { type: "ipip", port: 5555 } }), "tunnel.port", /only for tunnel.type "gue", not "ipip"/);
    expectFailure(check({ forwarding: "tunnel", tunnel: { type: "ipip" }, vips: ["2001:db8::10"] }), "vips[0]", /IPv6, and RealServerHost prepares ipip tunnels for IPv4 only \(on tunl0\)/);
    expectFailure(check({ forwarding: "tunnel", tunnel: { type: "gre" }, vips: ["192.0.2.10", "2001:db8::10"] }), "vips[1]", /IPv6, and RealServerHost prepares gre tunnels for IPv4 only \(on gre0\)/);
    expectFailure(check({ forwarding: "tunnel", tunnel: { type: "vxlan" } }), "tunnel.type", /tunnel.type/);
    expectFailure(check({ vips: ["10.0.0.11"] }), "vips[0]", /10.0.0.11 is the host's own SSH address \(host.host\)/);
    expectFailure(check({ vips: undefined, services: [{ address: "10.0.0.11" }] }), "services", /own SSH address/);
    expectFailure(check({ vips: undefined, services: [{ fwmark: 7 }] }), "services[0]", /fwmark service.*list them in vips/);
    expectFailure(check({ host: undefined }), "host", /is required/);
  });
  it("lets preview's unknown values through and parse refuses them", () => {
    const v = expectOk(check({ vips: U, host: U, forwarding: U }));
    expect(v.vips).toBe(U);
    expectOk(check({ vips: undefined, services: [{ address: U }] }));
    expect(() => parseRealServerHost(args({ services: [{ address: U }] }))).toThrow("is not known yet");
  });
  it("replaces on a change of host or of the VIPs' device (forwarding, tunnel type) only", () => {
    const a = expectOk(check());
    expect(diffRealServerHost("id", a, expectOk(check({ vips: ["192.0.2.11"] })))).toMatchObject({ changes: true, replaces: [] });
    expect(diffRealServerHost("id", a, expectOk(check({ host: director({ host: "10.0.0.12" }) })))).toMatchObject({ changes: true, replaces: ["host"] });
    expect(diffRealServerHost("id", a, a)).toMatchObject({ changes: false });
    const ipip = expectOk(check({ forwarding: "tunnel", tunnel: { type: "ipip" } }));
    const gre = expectOk(check({ forwarding: "tunnel", tunnel: { type: "gre" } }));
    expect(diffRealServerHost("id", a, ipip)).toMatchObject({ changes: true, replaces: ["forwarding", "tunnel"], deleteBeforeReplace: true });
    expect(diffRealServerHost("id", ipip, gre)).toMatchObject({ changes: true, replaces: ["tunnel"], deleteBeforeReplace: true });
  });
});

/** One host's ops, answering from an in-memory record (what the helper would report). */
function fakeHost() {
  const sent: Op[] = [];
  const state = { vips: new Map<string, boolean>(), sysctls: { "net.ipv4.conf.all.arp_ignore": 1, "net.ipv4.conf.all.arp_announce": 2 } as Record<string, number>, recorded: false };
  const ops = {
    run: async (op: Op) => {
      sent.push(op);
      if (op.op === "ensureHost") {
        for (const v of op.host.vips) state.vips.set(v, true);
        state.recorded = true;
        return { changed: true, host: { forwarding: "dr", vips: [], sysctls: state.sysctls } };
      }
      if (op.op === "deleteHost") return { changed: state.recorded };
      if (op.op === "getHost")
        return { host: state.recorded ? { forwarding: "dr", vips: [...state.vips].map(([address, present]) => ({ address, interface: "lo", present, added: true })), sysctls: state.sysctls } : null };
      throw new Error(`unexpected op ${op.op}`);
    },
  } as unknown as DirectorOps;
  return { sent, state, opsFor: () => ops };
}

describe("RealServerHost provider", () => {
  it("sends ensureHost with owner, holder and every VIP; reads drift back; deletes by owner and holder", async () => {
    const h = fakeHost();
    const p = makeRealServerHostProvider(h.opsFor);
    const inputs = expectOk(check({ services: [{ address: "192.0.2.20" }] })) as Record<string, unknown>;
    const { id, outs } = await p.create!(inputs);
    expect(id).toBe("realserverhost@10.0.0.11:22");
    expect(h.sent[0]).toEqual({ op: "ensureHost", owner: OWNER, holder: URN, host: { forwarding: "dr", vips: ["192.0.2.10", "192.0.2.20"] } });

    h.state.vips.set("192.0.2.20", false);
    h.state.sysctls["net.ipv4.conf.all.arp_ignore"] = 0;
    const read = await p.read!(id, outs);
    expect(read.props).toMatchObject({ vips: ["192.0.2.10"], sysctls: { "net.ipv4.conf.all.arp_ignore": 0, "net.ipv4.conf.all.arp_announce": 2 } });
    // The drift shows as an update of the declared VIPs and sysctls (up heals it in place).
    expect(diffRealServerHost(id, read.props, inputs)).toMatchObject({ changes: true, replaces: [] });

    await p.delete!(id, read.props!);
    expect(h.sent.at(-1)).toEqual({ op: "deleteHost", owner: OWNER, holder: URN });
  });
  it("sends the tunnel type with tunnel forwarding", async () => {
    const h = fakeHost();
    const p = makeRealServerHostProvider(h.opsFor);
    await p.create!(expectOk(check({ forwarding: "tunnel", tunnel: { type: "ipip" } })) as Record<string, unknown>);
    expect(h.sent[0]).toEqual({ op: "ensureHost", owner: OWNER, holder: URN, host: { forwarding: "tunnel", tunnel: { type: "ipip" }, vips: ["192.0.2.10"] } });
    await p.create!(expectOk(check({ forwarding: "tunnel", tunnel: { type: "gre" } })) as Record<string, unknown>);
    expect(h.sent[1]).toEqual({ op: "ensureHost", owner: OWNER, holder: URN, host: { forwarding: "tunnel", tunnel: { type: "gre" }, vips: ["192.0.2.10"] } });
  });
  it("reports the resource gone when the host has no record of it", async () => {
    const h = fakeHost();
    const p = makeRealServerHostProvider(h.opsFor);
    expect(await p.read!("realserverhost@10.0.0.11:22", expectOk(check()) as Record<string, unknown>)).toEqual({ id: "" });
  });
});
