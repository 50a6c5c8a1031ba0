import { describe, expect, it } from "vitest";
import { dynamicType, providerModule, withProviderModule } from "../../src/shim";

/** Evaluates a stored `__provider` module the way the dynamic-provider plugin does, with `require` given. */
function handlerOf(text: string, require: (m: string) => unknown): () => unknown {
  const module = { exports: {} as { handler?: () => unknown } };
  new Function("exports", "require", "module", text)(module.exports, require, module);
  return module.exports.handler!;
}

describe("providerModule", () => {
  it("is a small module whose handler returns the installed package's provider for the kind", () => {
    const provider = { create: async () => ({ id: "x" }) };
    const required: string[] = [];
    const text = providerModule("RealServer");
    // The engine re-serializes it twice per resource at every checkpoint: it must stay small.
    expect(text.length).toBeLessThan(300);
    const handler = handlerOf(text, (m) => (required.push(m), { providers: { RealServer: provider } }));
    expect(required).toEqual([]); // nothing loads until a call runs
    expect(handler()).toBe(provider);
    expect(required).toEqual(["pulumi-ipvs/provider"]);
  });

  it("says which kind an older installed package lacks", () => {
    const handler = handlerOf(providerModule("RealServerPool"), () => ({ providers: {} }));
    expect(handler).toThrow('pulumi-ipvs/provider has no provider for resource kind "RealServerPool" (is the installed version older?)');
    expect(handlerOf(providerModule("RealServer"), () => ({}))).toThrow(/no provider for resource kind "RealServer"/);
  });

  it("quotes the module and kind as data, never as code", () => {
    const odd = `x"); process.exit(1); ("`;
    const seen: string[] = [];
    const handler = handlerOf(providerModule(odd, `mod"name`), (m) => (seen.push(m), { providers: { [odd]: { ok: true } } }));
    expect(handler()).toEqual({ ok: true });
    expect(seen).toEqual([`mod"name`]);
  });

  it("is added to a resource's properties, which must not hold one already", () => {
    expect(withProviderModule("VirtualService", { port: 80 })).toEqual({ port: 80, __provider: providerModule("VirtualService") });
    expect(withProviderModule("Probe", {}, "probe-pkg").__provider).toBe(providerModule("Probe", "probe-pkg"));
    expect(() => withProviderModule("RealServer", { __provider: "x" })).toThrow("a dynamic resource must not define the __provider key");
  });

  it("names the type dynamic.Resource gives the kind", () => {
    expect(dynamicType("RealServer")).toBe("pulumi-nodejs:dynamic/ipvs:RealServer");
    expect(dynamicType("Probe", "e2e")).toBe("pulumi-nodejs:dynamic/e2e:Probe");
  });
});
