// Issue 28 item 1 through the real pulumi CLI: a NAT service whose VIP nobody put on the lab director answers only
// once the stack binds it (bindAddress), a second service shares the address, an address removed by hand is drift
// that refresh shows and up heals, bad input fails at preview naming the field, and destroy leaves no address behind.
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDirector, type LabDirector } from "../lab/director";
import { ipvsadmSave } from "../lab/ipvsadm";
import { addRealServers, httpRequests, type LabRealServer } from "../lab/realServers";
import { E2EStack, repoRoot, labDirectorConfig } from "./harness";

const VIP = "192.0.2.10";
const IP = "/sbin/ip";

describe("bindAddress through the pulumi CLI against a lab director", () => {
  let d: LabDirector;
  let servers: LabRealServer[];
  let stack: E2EStack;

  /** The web service's bindAddress in state (refresh writes what it read; stack outputs keep the last program run's). */
  const stateBinding = async () =>
    (await stack.exportState()).deployment.resources?.find((r) => r.urn.endsWith("::web"))?.outputs?.bindAddress;
  const ipvs0 = async () => (await d.exec(`${IP} -o -4 addr show dev ipvs0 2>/dev/null | awk '{print $4}'`, { check: false })).stdout.trim();

  beforeAll(async () => {
    d = await startDirector();
    servers = await addRealServers(d, 2);
    stack = await E2EStack.create({
      program: path.join(repoRoot, "test/e2e/fixtures/bind-address"),
      config: {
        ...labDirectorConfig(d),
        vip: VIP,
        backends: JSON.stringify(servers.map((s) => s.address)),
        bindAddress: "false",
      },
    });
  });

  afterAll(async () => {
    await stack?.dispose();
    await d?.stop();
  });

  it("without bindAddress nothing answers; with it the VIP is bound and NAT answers; a second service shares it", async () => {
    await stack.up();
    expect(await httpRequests(d, VIP, 80, 2, { allowFailures: true, timeoutSeconds: 2 })).toEqual(["", ""]);
    expect(await ipvs0()).toBe("");

    await stack.setConfig("bindAddress", '{"interface": "eth0:1"}');
    const err = await stack.preview().then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/bindAddress\.interface/);
    expect(err?.message).toMatch(/cannot contain '\/', ':' or whitespace/);

    await stack.setConfig("bindAddress", "true");
    await stack.setConfig("second", "true");
    await stack.up();
    expect((await stack.outputs()).web).toBe(true);
    expect(await ipvs0()).toBe(`${VIP}/32`);
    expect((await httpRequests(d, VIP, 80, 4)).sort()).toEqual(["rs1", "rs1", "rs2", "rs2"]);
    expect(await httpRequests(d, VIP, 8080, 1)).toHaveLength(1);

    // The second service goes: the address stays for the first.
    await stack.setConfig("second", "false");
    await stack.up();
    expect(await ipvs0()).toBe(`${VIP}/32`);
    expect(await httpRequests(d, VIP, 80, 1)).toHaveLength(1);
  });

  it("an address removed by hand is drift: refresh shows it, up puts it back", async () => {
    await d.exec(`${IP} addr del ${VIP}/32 dev ipvs0`);
    await stack.refresh();
    expect(await stateBinding()).toBe(false);
    await stack.up();
    expect(await stateBinding()).toBe(true);
    expect(await ipvs0()).toBe(`${VIP}/32`);
    expect(await httpRequests(d, VIP, 80, 1)).toHaveLength(1);
  });

  it("destroy removes the address and ipvs0 with the entries", async () => {
    await stack.destroy();
    expect(await ipvsadmSave(d)).toBe("");
    expect((await d.exec(`${IP} link show ipvs0`, { check: false })).code).not.toBe(0);
  });
});
