// ipvs-helper's director settings ops (PROTOCOL.md "Director settings ops") on a real kernel: every sysctl of the
// helper's table read as the kernel has it, and ensureSettings / deleteSettings checked with the real oracles
// (`sysctl -n`, `ipvsadm -L --timeout`, `ipvsadm -L --daemon`): applied, owned by one stack, moved to a renamed
// stack as they are, restored on delete.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDirector, type LabDirector } from "../director";
import { ipvsadm } from "../ipvsadm";
import { apply, applyOk, HELPER, installHelper } from "./helperLab";

const A = "acme/lab/a";
const B = "acme/lab/b";
/** Stack A after a rename of its stack. */
const RENAMED = "acme/lab/a-renamed";
const VS = (n: string) => `net.ipv4.vs.${n}`;
const procPath = (name: string) => `/proc/sys/${name.replaceAll(".", "/")}`;

interface SysctlDef {
  name: string;
  kind: "int" | "pair" | "cpulist";
}

/** `sysctl -n` of each name, in one exec, as the protocol writes values (pair as [a, b], cpulist as a string). */
async function sysctls(d: LabDirector, defs: SysctlDef[]): Promise<Record<string, unknown>> {
  const out = (await d.exec(defs.map((s) => `printf '%s\\0' "$(sysctl -n ${s.name})"`).join("; "))).stdout.split("\0");
  return Object.fromEntries(
    defs.map((s, i) => {
      const text = out[i]!.trim();
      const value = s.kind === "cpulist" ? text : s.kind === "pair" ? text.split(/\s+/).map(Number) : Number(text);
      return [s.name, value];
    }),
  );
}

describe("ipvs-helper director settings on a real kernel", () => {
  let d: LabDirector;
  let table: SysctlDef[];
  let present: SysctlDef[];
  let iface: string;
  const def = (name: string) => table.find((s) => s.name === name)!;

  beforeAll(async () => {
    d = await startDirector();
    await installHelper(d);
    await d.exec("modprobe ip_vs");
    table = JSON.parse((await d.exec(`${HELPER} names`)).stdout).sysctls as SysctlDef[];
    const exists = (await d.exec(table.map((s) => `test -e ${procPath(s.name)} && echo 1 || echo 0`).join("; "))).stdout.split("\n");
    present = table.filter((_, i) => exists[i] === "1");
    iface = (await d.exec("ls /sys/class/net | grep -v '^lo$' | head -n1")).stdout.trim();
  });

  afterAll(async () => {
    await d?.stop();
  });

  it("getSettings reads every sysctl this kernel has exactly as sysctl -n prints it, and names one it lacks", async () => {
    // What any kernel with IPVS has; est_* need 6.2, debug_level CONFIG_IP_VS_DEBUG, lblc* their scheduler module.
    expect(present.map((s) => s.name)).toEqual(expect.arrayContaining([VS("conn_reuse_mode"), VS("sync_threshold"), VS("sloppy_sctp"), "net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"]));
    const [r] = await applyOk(d, [{ op: "getSettings", sysctls: present.map((s) => s.name) }]);
    expect(r!.settings.sysctls).toEqual(await sysctls(d, present));
    expect(r!.owner).toBeNull();
    const absent = table.find((s) => !present.includes(s));
    if (absent) {
      const [m] = await apply(d, [{ op: "getSettings", sysctls: [absent.name] }]);
      expect(m!.error).toMatchObject({ code: "UNSUPPORTED_KERNEL" });
      expect(m!.error!.message).toContain(absent.name);
    }
  });

  it("ensureSettings applies the set, one stack holds it, an update puts dropped items back, delete restores all", async () => {
    // est_cpulist where the kernel has it (6.2+): a cpulist written as the kernel prints it back.
    const cpulist = present.some((s) => s.name === VS("est_cpulist")) ? { [VS("est_cpulist")]: "0" } : {};
    const names = [VS("conn_reuse_mode"), VS("expire_nodest_conn"), VS("sync_threshold"), "net.ipv4.ip_forward", ...Object.keys(cpulist)].map(def);
    const before = await sysctls(d, names);
    const timeoutsBefore = await ipvsadm(d, "-L --timeout");
    const daemonsBefore = await ipvsadm(d, "-L --daemon");
    const settings = {
      sysctls: { [VS("conn_reuse_mode")]: 0, [VS("expire_nodest_conn")]: 1, [VS("sync_threshold")]: [2, 20], "net.ipv4.ip_forward": 1, ...cpulist },
      timeouts: { tcp: 600, tcpfin: 60, udp: 200 },
      daemons: [{ state: "master", interface: iface, syncId: 9 }],
    };
    const [r] = await applyOk(d, [{ op: "ensureSettings", owner: A, settings }]);
    expect(r!.changed).toBe(true);
    expect(await sysctls(d, names)).toEqual(settings.sysctls);
    expect(await ipvsadm(d, "-L --timeout")).toBe("Timeout (tcp tcpfin udp): 600 60 200\n");
    // The fields left out take the kernel's defaults (maxlen from the interface MTU 1500).
    expect(await ipvsadm(d, "-L --daemon")).toBe(`master sync daemon (mcast=${iface}, syncid=9, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n`);

    const [again] = await applyOk(d, [{ op: "ensureSettings", owner: A, settings }]);
    expect(again!.changed).toBe(false);

    // Another stack is refused, naming the holder, and changes nothing.
    const [other] = await apply(d, [{ op: "ensureSettings", owner: B, settings: { sysctls: { [VS("conn_reuse_mode")]: 2 }, daemons: [] } }]);
    expect(other!.error).toMatchObject({ code: "OWNED" });
    expect(other!.error!.message).toContain(A);
    expect((await sysctls(d, [def(VS("conn_reuse_mode"))]))[VS("conn_reuse_mode")]).toBe(0);

    // Drift made by hand shows in getSettings.
    await d.exec(`sysctl -w ${VS("conn_reuse_mode")}=2 >/dev/null`);
    const [read] = await applyOk(d, [{ op: "getSettings", sysctls: [VS("conn_reuse_mode")] }]);
    expect(read!.settings.sysctls).toEqual({ [VS("conn_reuse_mode")]: 2 });
    expect(read!.owner).toBe(A);

    // Only conn_reuse_mode stays managed: everything else goes back to what it was before the first ensure.
    await applyOk(d, [{ op: "ensureSettings", owner: A, settings: { sysctls: { [VS("conn_reuse_mode")]: 0 }, daemons: [] } }]);
    expect(await sysctls(d, names)).toEqual({ ...before, [VS("conn_reuse_mode")]: 0 });
    expect(await ipvsadm(d, "-L --timeout")).toBe(timeoutsBefore);
    expect(await ipvsadm(d, "-L --daemon")).toBe(daemonsBefore);

    const [del] = await applyOk(d, [{ op: "deleteSettings", owner: A }]);
    expect(del!.changed).toBe(true);
    expect(await sysctls(d, names)).toEqual(before);
    const [free] = await applyOk(d, [{ op: "getSettings", sysctls: [] }]);
    expect(free!.owner).toBeNull();
  });

  it("a renamed stack (formerOwner) takes the settings as they are, and deleteSettings as the new owner restores them", async () => {
    const names = [VS("conn_reuse_mode"), VS("expire_nodest_conn")].map(def);
    const before = await sysctls(d, names);
    // Values other than the kernel's, so that sysctl -n tells set from restored.
    const flip = (name: string) => (before[name] === 0 ? 1 : 0);
    const settings = { sysctls: { [VS("conn_reuse_mode")]: flip(VS("conn_reuse_mode")), [VS("expire_nodest_conn")]: flip(VS("expire_nodest_conn")) }, daemons: [] };
    await applyOk(d, [{ op: "ensureSettings", owner: A, settings }]);
    expect(await sysctls(d, names)).toEqual(settings.sysctls);

    // The move writes nothing (changed false), so nothing reverts in between; the record is the new owner's.
    const [moved] = await applyOk(d, [{ op: "ensureSettings", owner: RENAMED, formerOwner: A, settings }]);
    expect(moved!.changed).toBe(false);
    expect(await sysctls(d, names)).toEqual(settings.sysctls);
    const [held] = await applyOk(d, [{ op: "getSettings", sysctls: [] }]);
    expect(held!.owner).toBe(RENAMED);
    const [asFormer] = await applyOk(d, [{ op: "deleteSettings", owner: A }]);
    expect(asFormer!.changed).toBe(false);
    expect(await sysctls(d, names)).toEqual(settings.sysctls);

    // The originals moved with it: the new owner's delete puts back what was there before the first ensure.
    const [del] = await applyOk(d, [{ op: "deleteSettings", owner: RENAMED }]);
    expect(del!.changed).toBe(true);
    expect(await sysctls(d, names)).toEqual(before);
    const [free] = await applyOk(d, [{ op: "getSettings", sysctls: [] }]);
    expect(free!.owner).toBeNull();
  });

  it("refuses a value out of range or a name outside the table before changing anything", async () => {
    const before = await sysctls(d, [def(VS("conn_reuse_mode"))]);
    const [range, name] = await apply(d, [
      { op: "ensureSettings", owner: A, settings: { sysctls: { [VS("conn_reuse_mode")]: 4 }, daemons: [] } },
      { op: "ensureSettings", owner: A, settings: { sysctls: { "net.ipv4.tcp_syncookies": 1 }, daemons: [] } },
    ]);
    expect(range!.error).toMatchObject({ code: "BAD_REQUEST" });
    expect(range!.error!.message).toContain("net.ipv4.vs.conn_reuse_mode must be 0..3, not 4");
    expect(name!.error).toMatchObject({ code: "BAD_REQUEST" });
    expect(name!.error!.message).toContain("net.ipv4.tcp_syncookies");
    expect(await sysctls(d, [def(VS("conn_reuse_mode"))])).toEqual(before);
  });
});
