import { describe, expect, it } from "vitest";
import { diffRealServer } from "../../provider/resources/realServer/provider";
import { diffVirtualService } from "../../provider/resources/virtualService/provider";
import { checkRealServer, checkVirtualService } from "../../provider/schema";
import { U, director, expectOk, fwmarkVs, publicKeyLine, rs, serviceRef, vs } from "./fixtures";

// Old outputs as the providers store them: the checked inputs (plus whatever read-back data a provider adds).
const outsVs = (inputs: Record<string, unknown>) => ({ ...expectOk(checkVirtualService(undefined, inputs)), __provider: "p", stats: { conns: 1 } });
const newsVs = (inputs: Record<string, unknown>) => ({ ...checkVirtualService(undefined, inputs).inputs, __provider: "p" });
const dvs = (old: Record<string, unknown>, neu: Record<string, unknown>) => diffVirtualService("id", outsVs(old), newsVs(neu));
const outsRs = (inputs: Record<string, unknown>) => ({ ...expectOk(checkRealServer(undefined, inputs)), __provider: "p", activeConns: 3 });
const drs = (old: Record<string, unknown>, neu: Record<string, unknown>) =>
  diffRealServer("id", outsRs(old), { ...checkRealServer(undefined, neu).inputs, __provider: "p" });

const noChange = { changes: false, replaces: [], deleteBeforeReplace: false };
const update = { changes: true, replaces: [], deleteBeforeReplace: false };
const replace = (...replaces: string[]) => ({ changes: true, replaces, deleteBeforeReplace: false });

describe("diffVirtualService", () => {
  it("no change, also with another spelling of the same values and extra outputs in state", () => {
    expect(dvs(vs(), vs())).toEqual(noChange);
    expect(dvs(vs({ address: "2001:db8::1", scheduler: "sh", schedulerFlags: ["sh-port", "sh-fallback"] }),
      vs({ address: "2001:DB8:0::1", scheduler: "sh", schedulerFlags: ["flag-1", "flag-2"] }))).toEqual(noChange);
    expect(dvs(vs(), vs({ scheduler: "wlc", protocol: undefined }))).toEqual(noChange);
  });
  it("each identity field replaces; create-before-delete is safe since the new identity differs on every director", () => {
    expect(dvs(vs(), vs({ address: "192.0.2.11" }))).toEqual(replace("address"));
    expect(dvs(vs(), vs({ port: 8080 }))).toEqual(replace("port"));
    expect(dvs(vs(), vs({ protocol: "udp" }))).toEqual(replace("protocol"));
    expect(dvs(vs(), vs({ address: "2001:db8::1" }))).toEqual(replace("family", "address"));
    expect(dvs(fwmarkVs(), fwmarkVs({ fwmark: 8 }))).toEqual(replace("fwmark"));
    expect(dvs(fwmarkVs(), fwmarkVs({ family: "ipv6" }))).toEqual(replace("family"));
    expect(dvs(vs(), fwmarkVs())).toEqual(replace("protocol", "address", "port", "fwmark"));
  });
  it("identity change together with a directors change still replaces without delete-before-replace", () =>
    expect(dvs(vs(), vs({ port: 8080, directors: [director(), director({ host: "10.0.0.6" })] }))).toEqual(replace("port")));
  it("each setting updates in place", () => {
    for (const over of [{ scheduler: "rr" }, { schedulerFlags: ["flag-3"] }, { persistence: {}, port: 0 }, { persistence: {} }, { adopt: true }])
      expect(dvs(vs(), vs(over)), JSON.stringify(over)).toEqual(over.port === 0 ? replace("port") : update);
    expect(dvs(vs({ persistence: {} }), vs({ persistence: { timeout: 60 } }))).toEqual(update);
    expect(dvs(vs({ persistence: {} }), vs({ persistence: { netmask: "255.255.255.0" } }))).toEqual(update);
    expect(dvs(vs({ protocol: "udp" }), vs({ protocol: "udp", onePacket: true }))).toEqual(update);
    expect(dvs(vs({ protocol: "udp", persistence: {} }), vs({ protocol: "udp", persistence: { engine: "sip" } }))).toEqual(update);
  });
  it("owner, takeover and deleteForeignRealServers update in place; state from before the ledger gains the owner by an update", () => {
    expect(dvs(vs({ owner: "acme/lb/prod" }), vs({ owner: "acme/lb/production" }))).toEqual(update);
    expect(dvs(vs({ owner: "acme/lb/prod" }), vs({ owner: "acme/lb/prod" }))).toEqual(noChange);
    expect(dvs(vs(), vs({ owner: "acme/lb/prod" }))).toEqual(update);
    expect(dvs(vs(), vs({ takeover: true }))).toEqual(update);
    expect(dvs(vs(), vs({ deleteForeignRealServers: true }))).toEqual(update);
    // State written before these inputs existed: their defaults are no change.
    const { takeover: _t, deleteForeignRealServers: _d, ...before } = outsVs(vs());
    expect(diffVirtualService("id", before, newsVs(vs()))).toEqual(noChange);
  });
  it("state from before minHealthy: one update, so the directors' ledgers record its default (with an owner only)", () => {
    const { minHealthy: _m, ...before } = outsVs(vs({ owner: "acme/lb/prod" }));
    expect(diffVirtualService("id", before, newsVs(vs({ owner: "acme/lb/prod" })))).toEqual(update);
    const { minHealthy: _n, ...ownerless } = outsVs(vs());
    expect(diffVirtualService("id", ownerless, newsVs(vs()))).toEqual(noChange);
    expect(dvs(vs({ owner: "acme/lb/prod" }), vs({ owner: "acme/lb/prod" }))).toEqual(noChange);
  });
  it("adding or removing a director is an update, not a replacement; reordering is no change", () => {
    const a = director({ host: "10.0.0.5" }), b = director({ host: "10.0.0.6" });
    expect(dvs(vs({ directors: [a] }), vs({ directors: [a, b] }))).toEqual(update);
    expect(dvs(vs({ directors: [a, b] }), vs({ directors: [b] }))).toEqual(update);
    expect(dvs(vs({ directors: [a, b] }), vs({ directors: [b, a] }))).toEqual(noChange);
  });
  it("credential-only changes update (state must learn them) and never replace", () => {
    for (const over of [
      { privateKey: undefined, privateKeyPath: "/keys/id" },
      { password: "new" },
      { hostKey: publicKeyLine("ssh-rsa") },
      { hostKey: undefined, insecureIgnoreHostKey: true },
      { sudo: false },
      { user: "deploy" },
      { connectTimeoutSeconds: 5 },
      { jumpHost: { host: "bastion", agent: true, insecureIgnoreHostKey: true } },
    ])
      expect(dvs(vs(), vs({ directors: [director(over)] })), JSON.stringify(over)).toEqual(update);
    const withJump = (password: string) => vs({ directors: [director({ jumpHost: { host: "bastion", password, insecureIgnoreHostKey: true } })] });
    expect(dvs(withJump("a"), withJump("b"))).toEqual(update);
  });
  it("a changed host key comment is no change", () =>
    expect(dvs(vs(), vs({ directors: [director({ hostKey: publicKeyLine("ssh-ed25519", "renamed") })] }))).toEqual(noChange));
  it("unknown identity at preview replaces, unknown settings or directors update", () => {
    expect(dvs(vs(), vs({ address: U }))).toEqual(replace("family", "address"));
    expect(dvs(vs(), vs({ port: U }))).toEqual(replace("port"));
    expect(dvs(fwmarkVs(), fwmarkVs({ fwmark: U }))).toEqual(replace("fwmark"));
    expect(dvs(vs(), vs({ scheduler: U }))).toEqual(update);
    expect(dvs(vs(), vs({ directors: U }))).toEqual(update);
    expect(dvs(vs(), vs({ directors: [director({ host: U })] }))).toEqual(update);
  });
});

describe("diffRealServer", () => {
  const fwRef = serviceRef({ protocol: undefined, address: undefined, port: undefined, fwmark: 7 });
  it("no change when equal, also when the omitted port equals the explicit one", () => {
    expect(drs(rs(), rs())).toEqual(noChange);
    expect(drs(rs({ port: 80 }), rs({ port: undefined }))).toEqual(noChange);
  });
  it("address and port replace", () => {
    expect(drs(rs(), rs({ address: "10.0.0.12" }))).toEqual(replace("address"));
    expect(drs(rs(), rs({ port: 8081 }))).toEqual(replace("port"));
  });
  it("a change of the service identity replaces", () => {
    expect(drs(rs(), rs({ service: serviceRef({ port: 81 }) }))).toEqual(replace("service"));
    expect(drs(rs(), rs({ service: serviceRef({ protocol: "udp" }) }))).toEqual(replace("service"));
    expect(drs(rs({ service: fwRef }), rs({ service: { ...fwRef, fwmark: 8 } }))).toEqual(replace("service"));
    // An omitted port follows the service port: both the service and the dest identity change.
    expect(drs(rs({ port: undefined }), rs({ port: undefined, service: serviceRef({ port: 81 }) }))).toEqual(replace("service", "port"));
  });
  it("settings update in place, forwarding included", () => {
    for (const over of [{ weight: 0 }, { upperThreshold: 10 }, { upperThreshold: 10, lowerThreshold: 2 }, { drain: { timeoutSeconds: 5 } }, { adopt: true }, { forwarding: "dr", port: 80 }])
      expect(drs(rs(over.forwarding ? { port: 80 } : {}), rs(over)), JSON.stringify(over)).toEqual(update);
    expect(drs(rs({ port: undefined, forwarding: "tunnel" }), rs({ port: undefined, forwarding: "tunnel", tunnel: { type: "gue", port: 6080 } }))).toEqual(update);
  });
  it("owner and takeover update in place", () => {
    expect(drs(rs({ owner: "acme/lb/prod" }), rs({ owner: "acme/lb2/prod" }))).toEqual(update);
    expect(drs(rs(), rs({ owner: "acme/lb/prod" }))).toEqual(update);
    expect(drs(rs(), rs({ takeover: true }))).toEqual(update);
    expect(drs(rs(), rs({ owner: U }))).toEqual(update);
  });
  it("directors of the service and their credentials update in place", () => {
    expect(drs(rs(), rs({ service: serviceRef({ directors: [director(), director({ host: "10.0.0.6" })] }) }))).toEqual(update);
    expect(drs(rs(), rs({ service: serviceRef({ directors: [director({ password: "x" })] }) }))).toEqual(update);
  });
  it("an unknown fwmark output of an address service is not an identity change", () =>
    expect(drs(rs(), rs({ service: serviceRef({ fwmark: U }) }))).toEqual(noChange));
  it("unknowns at preview: service identity replaces, settings update", () => {
    expect(drs(rs(), rs({ service: U }))).toEqual(replace("service"));
    expect(drs(rs({ port: undefined }), rs({ port: undefined, service: U }))).toEqual(replace("service", "port"));
    expect(drs(rs(), rs({ service: serviceRef({ address: U }) }))).toEqual(replace("service"));
    expect(drs(rs(), rs({ address: U }))).toEqual(replace("address"));
    expect(drs(rs(), rs({ weight: U }))).toEqual(update);
    expect(drs(rs(), rs({ service: serviceRef({ directors: U }) }))).toEqual(update);
  });
});
