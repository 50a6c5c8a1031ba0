// UDP through a NAT VIP on a real kernel: dnsmasq in two real server namespaces, busybox nslookup in the client
// namespace, the service built by ipvs-helper. A plain UDP service answers every query through the VIP. With one-packet
// scheduling (onePacket) the kernel keeps no connection entry after forwarding the query (it never hashes a one-packet
// connection, by design: no reply is expected), so the real server's reply crosses the director unrewritten: it reaches
// the client from the real server's own address, which the client's socket (connected to the VIP) does not accept —
// the kernel counts it as UdpNoPorts and answers with ICMP port unreachable, and the query times out. That is why the
// README says onePacket with forwarding "nat" is for one-way UDP only.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDirector, type LabDirector } from "../director";
import { addRealServers, addVip, inClient, type LabRealServer } from "../realServers";
import { applyOk, destOp, installHelper, settledStats, svcOp, udp } from "./helperLab";

const VIP = "192.0.2.10";
const IP = "/sbin/ip";
/** The address real server rsN's dnsmasq answers for www.example.org, so an answer names the real server that gave it. */
const answerOf = (s: LabRealServer) => `192.0.2.${80 + Number(s.name.slice(2))}`;

describe("UDP through a NAT VIP", () => {
  let d: LabDirector;
  let rs: LabRealServer[];

  /** The client namespace's UDP counters (its own /proc/net/snmp: /proc/net follows the reader's namespace). */
  async function clientUdp(): Promise<{ InDatagrams: number; NoPorts: number }> {
    const { stdout } = await inClient(d, "cat /proc/net/snmp");
    const [names, values] = stdout.split("\n").filter((l) => l.startsWith("Udp: "));
    const row = Object.fromEntries(names!.split(/\s+/).slice(1).map((n, i) => [n, Number(values!.split(/\s+/)[i + 1])]));
    return { InDatagrams: row.InDatagrams!, NoPorts: row.NoPorts! };
  }

  /**
   * One A query for www.example.org through the VIP; the answered address, or "" when none came within `seconds`.
   * busybox nslookup retries on its own, so `timeout` bounds it.
   */
  async function query(seconds: number): Promise<string> {
    const res = await inClient(d, `timeout ${seconds} nslookup -type=A www.example.org ${VIP}`, { check: false, timeoutMs: (seconds + 30) * 1000 });
    return /Name:\s+www\.example\.org\s+Address: (\S+)/.exec(res.stdout)?.[1] ?? "";
  }

  beforeAll(async () => {
    d = await startDirector();
    await installHelper(d);
    rs = await addRealServers(d, 2);
    await addVip(d, VIP);
    await inClient(d, "true"); // creates the client namespace, from which readiness is checked below
    await d.exec(
      rs
        .map(
          (s) =>
            `setsid ${IP} netns exec ${s.name} dnsmasq --keep-in-foreground --port=53 --listen-address=${s.address} --bind-interfaces ` +
            `--no-resolv --no-hosts --address=/www.example.org/${answerOf(s)} --user=root --pid-file=/run/lab/${s.name}.dns.pid </dev/null >/dev/null 2>&1 &`,
        )
        .join("\n") +
        // Ready once each answers a query sent to it directly (a bounded wait; busybox nslookup retries for ever on its own).
        `\nfor a in ${rs.map((s) => s.address).join(" ")}; do i=0
  until ${IP} netns exec labclient timeout 2 nslookup -type=A www.example.org $a >/dev/null 2>&1; do
    i=$((i+1)); [ $i -lt 50 ] || { echo "dnsmasq at $a does not answer" >&2; exit 1; }; sleep 0.2
  done
done`,
    );
  });

  afterAll(async () => {
    await d?.stop();
  });

  it("a plain UDP service: every query through the VIP is answered, round robin over both resolvers", async () => {
    await d.exec("ipvsadm -C");
    await applyOk(d, [svcOp(udp(VIP, 53), { scheduler: "rr" }), ...rs.map((s) => destOp(udp(VIP, 53), { address: s.address, port: 53, forwarding: "nat" }))]);
    const answers: string[] = [];
    // Each nslookup uses a new source port, so a new IPVS connection: rr alternates.
    for (let i = 0; i < 4; i++) answers.push(await query(10));
    expect(answers.sort()).toEqual([answerOf(rs[0]!), answerOf(rs[0]!), answerOf(rs[1]!), answerOf(rs[1]!)]);
    const [svc] = await settledStats(d);
    expect(svc!.realServers.map((r) => r.outPkts)).toEqual([2, 2]);
  });

  it("onePacket with NAT real servers: replies leave unrewritten, from the real server's address, and the client drops them", async () => {
    await d.exec("ipvsadm -C");
    await applyOk(d, [
      svcOp(udp(VIP, 53), { scheduler: "rr", onePacket: true }),
      ...rs.map((s) => destOp(udp(VIP, 53), { address: s.address, port: 53, forwarding: "nat" })),
    ]);
    const before = await clientUdp();
    expect(await query(3)).toBe("");
    const after = await clientUdp();
    // Answers did arrive (at least one per try), but not to a socket: they came from a real server, not from the VIP.
    expect(after.NoPorts - before.NoPorts).toBeGreaterThanOrEqual(1);
    expect(after.InDatagrams - before.InDatagrams).toBe(0);
    // The same service without onePacket answers again.
    await applyOk(d, [svcOp(udp(VIP, 53), { scheduler: "rr", onePacket: false })]);
    expect([answerOf(rs[0]!), answerOf(rs[1]!)]).toContain(await query(10));
  });
});
