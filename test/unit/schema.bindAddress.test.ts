// VirtualService.bindAddress at preview: the forms it takes, and every bad input refused naming the field and the rule.
import { describe, expect, it } from "vitest";
import { checkVirtualService } from "../../provider/schema";
import { boundProps } from "../../provider/resources/virtualService/wire";
import { expectFailure, expectOk, fwmarkVs, vs } from "./fixtures";

const check = (inputs: Record<string, unknown>) => checkVirtualService(undefined, inputs);

describe("VirtualService.bindAddress", () => {
  it("defaults to false and keeps true or { interface }", () => {
    expect(expectOk(check(vs())).bindAddress).toBe(false);
    expect(expectOk(check(vs({ bindAddress: true }))).bindAddress).toBe(true);
    expect(expectOk(check(vs({ bindAddress: { interface: "eth0" } }))).bindAddress).toEqual({ interface: "eth0" });
    expect(expectOk(check(vs({ bindAddress: { interface: "bond0.100" } }))).bindAddress).toEqual({ interface: "bond0.100" });
    expect(expectOk(check(vs({ bindAddress: { interface: "a23456789012345" } }))).bindAddress).toEqual({ interface: "a23456789012345" });
  });
  it("refuses interface names the kernel cannot have", () => {
    for (const [name, rule] of [
      ["", /1 to 15 characters/],
      ["a234567890123456", /1 to 15 characters/],
      [".", /cannot be "\." or "\.\."/],
      ["..", /cannot be "\." or "\.\."/],
      ["eth/0", /cannot contain '\/', ':' or whitespace/],
      ["eth0:1", /cannot contain '\/', ':' or whitespace/],
      ["eth 0", /cannot contain '\/', ':' or whitespace/],
      ["ipvs0", /helper's own dummy interface: use bindAddress: true/],
    ] as const)
      expectFailure(check(vs({ bindAddress: { interface: name } })), "bindAddress.interface", rule);
  });
  it("refuses other shapes", () => {
    expectFailure(check(vs({ bindAddress: "eth0" })), "bindAddress", /bindAddress must be true, false or \{ interface: "eth0" \}/);
    expectFailure(check(vs({ bindAddress: { interface: "eth0", dev: "x" } })), "bindAddress.dev", /dev/);
    expectFailure(check(vs({ bindAddress: { interface: 3 } })), "bindAddress.interface", /bindAddress.interface must be a string/);
  });
  it("refuses bindAddress on a fwmark service", () => {
    expectFailure(check(fwmarkVs({ bindAddress: true })), "bindAddress", /cannot be used with fwmark: a fwmark service has no address to bind/);
    expectOk(check(fwmarkVs({ bindAddress: false })));
  });
  it("reads back what is on the director: the recorded binding while its address is there, else false (drift)", () => {
    expect(boundProps({})).toBe(false);
    expect(boundProps({ bindAddress: { interface: "ipvs0", dummy: true, added: true, present: true } })).toBe(true);
    expect(boundProps({ bindAddress: { interface: "eth0", present: true } })).toEqual({ interface: "eth0" });
    expect(boundProps({ bindAddress: { interface: "ipvs0", dummy: true, present: false } })).toBe(false);
  });
});
