// A stack renamed with `pulumi stack rename` through the real pulumi CLI (fixtures/pool-settings: a VirtualService with
// RealServers, a RealServerPool and DirectorSettings on one lab director): the next up only updates (no create, delete
// or replace), the kernel's table and the managed timeout and sysctl stay exactly as they were, and the helper's
// ownership ledger names the new owner for every service, real server and the settings, the old one nowhere. The
// settings move without being put back in between (formerOwner, PROTOCOL.md "Director settings ops"): kprobes on the
// kernel's own setters record no write of a managed value during the rename's up, and the same probes see destroy
// put back the originals recorded before the first up, so they survived the move. The key is secret config.
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDirector, type LabDirector } from "../lab/director";
import { ipvsadm } from "../lab/ipvsadm";
import { E2EStack, repoRoot, type OperationResult, labDirectorConfig } from "./harness";

const VIP = "192.0.2.30";
const BACKENDS = ["10.10.0.11", "10.10.0.12", "10.10.0.13"];
const PROJECT = "pool-settings";
const RENAMED = "e2e-renamed";
const owner = (stack: string) => `organization/${PROJECT}/${stack}`;
const urn = (stack: string, type: string, name: string) => `urn:pulumi:${stack}::${PROJECT}::pulumi-nodejs:dynamic/ipvs:${type}::${name}`;
/** The kernel's defaults, which the fixture's settings (tcp 600, expire_nodest_conn 1) replace. */
const ORIGINAL = { timeouts: "Timeout (tcp tcpfin udp): 900 120 300", expireNodestConn: "0" };
const APPLIED = { timeouts: "Timeout (tcp tcpfin udp): 600 120 300", expireNodestConn: "1" };

/**
 * Kprobes on what every change of the managed settings goes through (x86_64 argument registers, the lab kernel's
 * 6.1 struct genl_info: nlhdr, genlhdr, userhdr, attrs at 8..32): the IPVS_CMD_SET_CONFIG (12) netlink command the
 * helper sets timeouts with, read in ip_vs_genl_set_cmd(skb, info) — genlhdr->cmd and the TIMEOUT_TCP/TCP_FIN/UDP
 * (4..6) attributes, each as its pointer (0: not sent, its value is then garbage) and value — and proc_dointvec
 * writes (the ctl_table's procname and the text written).
 */
const TRACE = "/sys/kernel/tracing";
const attr = (n: number) => `a${n}=+${8 * n}(+32(%si)):x64 v${n}=+4(+${8 * n}(+32(%si))):u32`;
const PROBES = [
  `p:pulumi_ipvs_e2e/timeouts ip_vs_genl_set_cmd cmd=+0(+16(%si)):u8 ${[4, 5, 6].map(attr).join(" ")}`,
  "p:pulumi_ipvs_e2e/sysctl proc_dointvec name=+0(+0(%di)):string write=%si:s32 value=+0(%dx):string",
];

/** The operation's step per URN (the engine's completed steps), e.g. { "urn:…::web": "update" }. */
function steps(res: OperationResult): Record<string, string> {
  return Object.fromEntries(
    res.events
      .map((e) => (e.resOutputsEvent as { metadata: { urn: string; op: string } } | undefined)?.metadata)
      .filter((m) => m !== undefined)
      .map((m) => [m.urn, m.op]),
  );
}

/** The resource changes an operation's summary counted, e.g. { same: 1, update: 3 }. */
function changes(res: OperationResult): Record<string, number> {
  const summary = res.events.find((e) => e.summaryEvent)?.summaryEvent as { resourceChanges?: Record<string, number> } | undefined;
  return summary?.resourceChanges ?? {};
}

interface LedgerStack {
  owner: string;
  services: { service: { protocol: string; address: string; port: number } }[];
  dests: { service: { address: string; port: number }; dest: { address: string; port: number }; holder?: string }[];
  settings: { applied: unknown; original: unknown } | null;
}

describe("a renamed stack keeps its entries and settings on a lab director", () => {
  let d: LabDirector;
  let stack: E2EStack;

  const kernel = async () => ({
    table: (await ipvsadm(d, "-Ln")).split("\n").filter(Boolean).sort(),
    timeouts: (await ipvsadm(d, "-L --timeout")).trim(),
    expireNodestConn: (await d.exec("sysctl -n net.ipv4.vs.expire_nodest_conn")).stdout.trim(),
  });
  const ledger = async () => {
    const text = (await d.exec("/usr/local/lib/pulumi-ipvs/*/ipvs-helper owners --json")).stdout;
    return { text, stacks: (JSON.parse(text) as { stacks: LedgerStack[] }).stacks };
  };
  /** What the ledger says one stack owns: its services, each real server's holder, its settings. */
  const owned = (s: LedgerStack) => ({
    owner: s.owner,
    services: s.services.map((x) => `${x.service.protocol} ${x.service.address}:${x.service.port}`).sort(),
    holders: Object.fromEntries(s.dests.map((x) => [`${x.service.port} ${x.dest.address}:${x.dest.port}`, x.holder])),
    settings: s.settings,
  });
  const expectedOwned = (name: string) => ({
    owner: owner(name),
    services: [`tcp ${VIP}:80`, `tcp ${VIP}:8080`],
    holders: Object.fromEntries([
      ...BACKENDS.map((a, i) => [`80 ${a}:80`, urn(name, "RealServer", `app-${i + 1}`)]),
      ...BACKENDS.flatMap((a) => [80, 81].map((p) => [`8080 ${a}:${p}`, urn(name, "RealServerPool", "web-pool")])),
    ]),
    settings: {
      applied: { sysctls: { "net.ipv4.vs.expire_nodest_conn": 1 }, timeouts: { tcp: 600 }, daemons: [] },
      original: { sysctls: { "net.ipv4.vs.expire_nodest_conn": 0 }, timeouts: { tcp: 900 }, daemons: [] },
    },
  });
  /** The managed-setting writes the kernel saw since the last call, sorted; clears the trace. */
  const writes = async (): Promise<string[]> => {
    const text = (await d.exec(`cat ${TRACE}/trace && echo > ${TRACE}/trace`)).stdout;
    // Every IPVS netlink set command is traced (a filter on the u8 command field matched nothing): keep SET_CONFIG.
    const sent = (ptr: string, value: string) => (/^0x0+$/.test(ptr) ? "-" : value);
    const out = [...text.matchAll(/timeouts: \([^)]*\) cmd=12 a4=(\S+) v4=(\d+) a5=(\S+) v5=(\d+) a6=(\S+) v6=(\d+)/g)].map(
      (m) => `timeouts tcp=${sent(m[1]!, m[2]!)} tcpfin=${sent(m[3]!, m[4]!)} udp=${sent(m[5]!, m[6]!)}`,
    );
    // The value text ends in a newline, which splits the trace line: only its digits are taken.
    for (const m of text.matchAll(/sysctl: \([^)]*\) name="([^"]*)" write=1 value="(-?\d+)/g)) {
      if (m[1] === "expire_nodest_conn") out.push(`${m[1]}=${m[2]}`);
    }
    return out.sort();
  };

  beforeAll(async () => {
    d = await startDirector();
    // ipvsadm loads ip_vs, so its sysctls and the probed functions exist before the first up.
    expect(await kernel()).toMatchObject(ORIGINAL);
    const events = `${TRACE}/events/pulumi_ipvs_e2e`;
    await d.exec(
      [
        `[ -e ${TRACE}/kprobe_events ] || mount -t tracefs nodev ${TRACE}`,
        ...PROBES.map((p) => `echo '${p}' >> ${TRACE}/kprobe_events`),
        `echo 'write != 0' > ${events}/sysctl/filter`,
        `echo 1 > ${events}/enable`,
        `echo > ${TRACE}/trace`,
      ].join(" && "),
    );
    stack = await E2EStack.create({
      program: path.join(repoRoot, "test", "e2e", "fixtures", PROJECT),
      config: {
        ...labDirectorConfig(d),
        vip: VIP, backends: JSON.stringify(BACKENDS), scheduler: "rr", weight: "1",
      },
    });
  });

  afterAll(async () => {
    await stack?.dispose();
    await d?.stop();
  });

  it("the up after `pulumi stack rename` only updates, changes nothing on the director and moves every entry; destroy puts the originals back", async () => {
    await stack.up();
    const before = await kernel();
    expect(before).toMatchObject(APPLIED);
    // Two services and nine real servers: the three RealServers and six pool members.
    const entry = (l: string) => l.includes(VIP) || BACKENDS.some((a) => l.includes(`${a}:`));
    expect(before.table.filter(entry)).toHaveLength(11);
    expect(before.table).toContain(`TCP  ${VIP}:8080 wrr`);
    expect(await writes()).toEqual(["expire_nodest_conn=1", "timeouts tcp=600 tcpfin=- udp=-"]);
    expect((await ledger()).stacks.map(owned)).toEqual([expectedOwned("e2e")]);

    await stack.renameStack(RENAMED);
    const res = await stack.up();
    // Every managing resource updates in place (its owner input); the stack resource is the same.
    const managed = [
      urn(RENAMED, "VirtualService", "web"), urn(RENAMED, "VirtualService", "pooled"),
      ...BACKENDS.map((_, i) => urn(RENAMED, "RealServer", `app-${i + 1}`)),
      urn(RENAMED, "RealServerPool", "web-pool"), urn(RENAMED, "DirectorSettings", "settings"),
    ];
    expect(steps(res)).toEqual({
      ...Object.fromEntries(managed.map((u) => [u, "update"])),
      [`urn:pulumi:${RENAMED}::${PROJECT}::pulumi:pulumi:Stack::${PROJECT}-${RENAMED}`]: "same",
      [`urn:pulumi:${RENAMED}::${PROJECT}::pulumi:providers:pulumi-nodejs::default`]: "same",
    });
    expect(changes(res)).toEqual({ same: 1, update: managed.length });
    expect(await kernel()).toEqual(before);
    // Not even a write of the same value: the settings moved, nothing was put back and set again.
    expect(await writes()).toEqual([]);
    const moved = await ledger();
    expect(moved.stacks.map(owned)).toEqual([expectedOwned(RENAMED)]);
    expect(moved.text).not.toContain(`"${owner("e2e")}"`);
    expect(moved.text).not.toContain("urn:pulumi:e2e::");

    const again = await stack.up();
    expect(changes(again)).toEqual({ same: managed.length + 1 });
    expect(await kernel()).toEqual(before);
    expect(await writes()).toEqual([]);

    await stack.destroy();
    const after = await kernel();
    expect(after).toMatchObject(ORIGINAL);
    // Only ipvsadm's header lines are left.
    expect(after.table).toEqual(before.table.filter((l) => !entry(l)));
    // The originals recorded before the first up, put back by the renamed stack.
    expect(await writes()).toEqual(["expire_nodest_conn=0", "timeouts tcp=900 tcpfin=- udp=-"]);
    expect((await ledger()).stacks).toEqual([]);
  });
});
