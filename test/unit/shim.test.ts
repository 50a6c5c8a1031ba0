import { describe, expect, it } from "vitest";
import { providerShim } from "../../src/shim";

describe("providerShim", () => {
  it("is one object per kind, so Pulumi serializes its closure once, not once per resource", () => {
    expect(providerShim("RealServer")).toBe(providerShim("RealServer"));
    expect(providerShim("RealServer")).not.toBe(providerShim("VirtualService"));
    expect(providerShim("RealServer", "other-module")).not.toBe(providerShim("RealServer"));
  });
});
