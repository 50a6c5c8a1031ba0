// Health checks (issue 27), the director's side: `ipvs-helper health` reads the checks the ledger records (sent
// with ensureDest / ensureService, as the provider will), probes real httpd servers in namespaces from the lab
// director, and the real ipvsadm shows what it did to the kernel. The lab director has no systemd, so the checker
// is started by hand (detached), as the README says to do without systemd.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDirector, type LabDirector } from "../director";
import { ipvsadm } from "../ipvsadm";
import { addRealServers, addVip, httpRequests, type LabRealServer } from "../realServers";
import { applyOk, destOp, HELPER, installHelper, svcOp, tcp } from "./helperLab";

const VIP = "192.0.2.10";
const VIP2 = "192.0.2.11";
const VIP3 = "192.0.2.12";
const OWNER = "acme/lb/health";
const LOG = "/run/lab/health.log";
const PID = "/run/lab/health.pid";
const STATE = "/var/lib/pulumi-ipvs-health/state.json";
// interval 2 s, timeout 0.5 s, fall 2, rise 2: a dead server is at weight 0 within fall × interval + timeout, plus
// one interval for the probe schedule's phase; back within rise × interval, plus one. (With a 1 s interval the
// bounds were met with ~0.1 s to spare on a loaded 2-core host running TCG guests: too close to depend on.)
const INTERVAL = 2;
const CHECK = {
  type: "http", port: 80, intervalSeconds: INTERVAL, timeoutSeconds: 0.5, rise: 2, fall: 2, onFailure: "quiesce",
  http: { path: "/index.html", method: "GET", expectStatus: "200" },
};
const DOWN_BOUND_MS = (2 * INTERVAL + 0.5 + INTERVAL) * 1000;
const UP_BOUND_MS = (2 * INTERVAL + INTERVAL) * 1000;

describe("ipvs-helper health", () => {
  let d: LabDirector;
  let rs: LabRealServer[];

  const startChecker = () =>
    d.exec(`mkdir -p /run/lab; setsid ${HELPER} health --metrics-dir /run/lab/metrics </dev/null >>${LOG} 2>&1 & echo $! > ${PID}`);
  const stopChecker = () =>
    d.exec(`[ -e ${PID} ] || exit 0; p=$(cat ${PID}); kill $p 2>/dev/null || true; i=0
while [ -e /proc/$p ]; do i=$((i+1)); [ $i -lt 100 ] || { echo "checker $p did not stop" >&2; exit 1; }; sleep 0.1; done; rm -f ${PID}`);
  const killHttpd = (s: LabRealServer) => `for p in $(/sbin/ip netns pids ${s.name}); do kill $p; done`;
  const startHttpd = (s: LabRealServer) => `/sbin/ip netns exec ${s.name} busybox httpd -p 80 -h /run/lab/${s.name}`;
  /** Starts the httpd of every real server whose namespace runs none (a failed test may have left one dead). */
  const healAll = () =>
    d.exec(rs.map((s) => `[ -n "$(/sbin/ip netns pids ${s.name})" ] || ${startHttpd(s)}`).join("\n"));
  /** Waits until VIP and VIP2 hold their declared weights again. */
  const healed = () => timeUntil("", [...rs.slice(0, 3).map((s, i) => line(VIP, s, 3 + i)), ...rs.slice(0, 3).map((s) => line(VIP2, s, 1))], UP_BOUND_MS,
    [`-t ${VIP2}:80 -r ${rs[3]!.address}:80`]);
  const line = (svc: string, s: LabRealServer, w: number) => `-a -t ${svc}:80 -r ${s.address}:80 -m -w ${w}`;

  /**
   * Runs `action` on the director, then polls ipvsadm there every 0.2 s (a fork costs much under TCG: faster polling slows the checker it measures) until the table holds every `want` line (or
   * lacks every `gone` line); returns the milliseconds that took, measured on the director. Throws past boundMs + 3 s.
   */
  async function timeUntil(action: string, want: string[], boundMs: number, gone: string[] = []): Promise<number> {
    const test = [...want.map((l) => `grep -qF -- '${l}' /tmp/t`), ...gone.map((l) => `! grep -qF -- '${l}' /tmp/t`)].join(" && ");
    const limit = Math.ceil((boundMs + 3000) / 10); // centiseconds
    const { stdout } = await d.exec(`set -e
start=$(cut -d' ' -f1 /proc/uptime | tr -d .)
${action}
while :; do
  ipvsadm -Sn > /tmp/t
  now=$(cut -d' ' -f1 /proc/uptime | tr -d .)
  if ${test}; then echo $(( (now - start) * 10 )); exit 0; fi
  [ $((now - start)) -lt ${limit} ] || { echo "not reached within ${boundMs + 3000} ms:" >&2; cat /tmp/t >&2; tail -n 20 ${LOG} >&2; exit 1; }
  sleep 0.2
done`);
    return Number(stdout.trim());
  }

  beforeAll(async () => {
    d = await startDirector();
    await installHelper(d);
    rs = await addRealServers(d, 4);
    await addVip(d, VIP);
    await addVip(d, VIP2);
    await addVip(d, VIP3);
    // VIP: rs1..rs3 checked at declared weights 3, 4, 5. VIP2: the same three with minHealthy 2 and rs4 as the
    // sorry server (not a member: the checker adds it).
    await applyOk(d, [
      svcOp(tcp(VIP, 80), { scheduler: "rr" }, { owner: OWNER }),
      ...rs.slice(0, 3).map((s, i) => destOp(tcp(VIP, 80), { address: s.address, port: 80, forwarding: "nat", weight: 3 + i }, { owner: OWNER, healthCheck: CHECK })),
      svcOp(tcp(VIP2, 80), { scheduler: "rr" }, { owner: OWNER, minHealthy: 2, sorryServer: { address: rs[3]!.address, port: 80, forwarding: "nat" } }),
      ...rs.slice(0, 3).map((s) => destOp(tcp(VIP2, 80), { address: s.address, port: 80, forwarding: "nat", weight: 1 }, { owner: OWNER, healthCheck: CHECK })),
    ]);
    await startChecker();
  }, 120_000);

  afterAll(async () => {
    if (d) await stopChecker().catch(() => undefined);
    await d?.stop();
  });

  it("quiesces a real server whose httpd dies within fall × interval + timeout (+1 interval), and the VIP answers all", async () => {
    const took = await timeUntil(killHttpd(rs[0]!), [line(VIP, rs[0]!, 0)], DOWN_BOUND_MS);
    console.log(`health: kill → weight 0 in ${took} ms (bound ${DOWN_BOUND_MS} ms)`);
    expect(took).toBeLessThanOrEqual(DOWN_BOUND_MS);
    const answers = await httpRequests(d, VIP, 80, 30);
    expect(answers.filter((a) => a === "rs1")).toEqual([]);
    expect(answers.length).toBe(30);
    const log = (await d.exec(`cat ${LOG}`)).stdout;
    expect(log).toMatch(new RegExp(`tcp/${VIP}:80 → ${rs[0]!.address}:80 down: connection refused \\(2 of 2 failed\\); quiesced, weight 3 → 0`));
    // Only that one: the others keep their declared weights.
    const table = await ipvsadm(d, "-Sn");
    expect(table).toContain(line(VIP, rs[1]!, 4));
    expect(table).toContain(line(VIP, rs[2]!, 5));
    // Read-back tells the provider the declared weight and the health, so a refresh sees no change.
    const [g] = await applyOk(d, [{ op: "getService", service: tcp(VIP, 80), withDests: true }]);
    const rs1 = g!.service.dests.find((x: { address: string }) => x.address === rs[0]!.address);
    expect(rs1.weight).toBe(0);
    expect(rs1.health).toMatchObject({ state: "unhealthy", depooled: true, declaredWeight: 3, check: "http", last: "connection refused" });
    expect(g!.service.dests.find((x: { address: string }) => x.address === rs[1]!.address).health).toMatchObject({ state: "healthy", depooled: false, declaredWeight: 4 });

    const back = await timeUntil(startHttpd(rs[0]!), [line(VIP, rs[0]!, 3)], UP_BOUND_MS);
    console.log(`health: restart → declared weight 3 in ${back} ms (bound ${UP_BOUND_MS} ms)`);
    expect(back).toBeLessThanOrEqual(UP_BOUND_MS);
    expect(new Set(await httpRequests(d, VIP, 80, 12))).toEqual(new Set(["rs1", "rs2", "rs3"]));
    expect((await d.exec(`cat ${LOG}`)).stdout).toContain(`→ ${rs[0]!.address}:80 up: http check passed (2 of 2); restored, weight 0 → 3`);
    const metrics = (await d.exec("cat /run/lab/metrics/ipvs_health.prom")).stdout;
    expect(metrics).toContain(`ipvs_health_up{service="tcp/${VIP}:80",real_server="${rs[0]!.address}:80",stack="${OWNER}"} 1`);
  }, 60_000);

  it("a restarted checker keeps the state: a server depooled before the restart is restored after it", async () => {
    await healAll();
    await healed();
    // Both services' entries: each is probed on its own phase of the interval, so one goes down before the other.
    await timeUntil(killHttpd(rs[1]!), [line(VIP, rs[1]!, 0), line(VIP2, rs[1]!, 0)], DOWN_BOUND_MS);
    await stopChecker();
    const state = JSON.parse((await d.exec(`cat ${STATE}`)).stdout) as { dests: Array<{ address: string; healthy: boolean; depooled: boolean }> };
    expect(state.dests.filter((x) => x.address === rs[1]!.address).map((x) => [x.healthy, x.depooled])).toEqual([[false, true], [false, true]]);
    // Fail static: with the checker stopped, nothing moves, though rs2 answers again (two intervals' worth).
    await d.exec(startHttpd(rs[1]!));
    await new Promise((r) => setTimeout(r, 2 * INTERVAL * 1000));
    expect(await ipvsadm(d, "-Sn")).toContain(line(VIP, rs[1]!, 0));
    // The new checker knows it depooled rs2 (a checker that forgot would leave it at weight 0 for good) and restores
    // it after rise successes.
    await startChecker();
    await timeUntil("", [line(VIP, rs[1]!, 4), line(VIP2, rs[1]!, 1)], UP_BOUND_MS + INTERVAL * 1000);
  }, 60_000);

  it("minHealthy keeps servers pooled when all are down and names them; the sorry server comes and goes", async () => {
    await healAll();
    await healed();
    const all = rs.slice(0, 3);
    const sorry = `-a -t ${VIP2}:80 -r ${rs[3]!.address}:80 -m -w 1`;
    // VIP (no minHealthy): all three at 0. VIP2 (minHealthy 2 of 3): the first to fail goes, two stay, and the
    // sorry server comes in; which one goes depends on which probe fails first, so only counts are waited for.
    await timeUntil(all.map(killHttpd).join("\n"), [...all.map((s) => line(VIP, s, 0)), sorry], DOWN_BOUND_MS);
    const log = (await d.exec(`cat ${LOG}`)).stdout;
    const table = await ipvsadm(d, "-Sn");
    const vip2 = all.filter((s) => table.includes(line(VIP2, s, 1)));
    expect(vip2.length).toBe(2);
    expect(all.filter((s) => table.includes(line(VIP2, s, 0))).length).toBe(1);
    expect(log).toContain(`tcp/${VIP2}:80: kept pooled by minHealthy (2 of 3 must stay): ${vip2.map((s) => `${s.address}:80`).join(", ")}`);
    expect(log).toContain(`tcp/${VIP2}:80: no real server is healthy; sorry server ${rs[3]!.address}:80 added (weight 1)`);
    // The kept servers are down too (minHealthy keeps them against a bad check): of VIP2, only the sorry server answers.
    expect(new Set((await httpRequests(d, VIP2, 80, 6, { allowFailures: true })).filter((a) => a !== ""))).toEqual(new Set(["rs4"]));

    await timeUntil(all.map(startHttpd).join("\n"), [...all.map((s) => line(VIP2, s, 1)), line(VIP, rs[0]!, 3), line(VIP, rs[1]!, 4), line(VIP, rs[2]!, 5)],
      UP_BOUND_MS, [`-r ${rs[3]!.address}:80`]);
    expect((await d.exec(`cat ${LOG}`)).stdout).toContain(`sorry server ${rs[3]!.address}:80 removed`);
  }, 60_000);

  it("tcp check with onFailure remove: deleted, reported as declared, re-added; an up that changes a check takes effect without a restart", async () => {
    await healAll();
    await healed();
    const tcpCheck = { ...CHECK, type: "tcp", http: undefined, onFailure: "remove" };
    await applyOk(d, [
      svcOp(tcp(VIP3, 80), { scheduler: "rr" }, { owner: OWNER }),
      ...rs.slice(0, 2).map((s) => destOp(tcp(VIP3, 80), { address: s.address, port: 80, forwarding: "nat", weight: 2 }, { owner: OWNER, healthCheck: tcpCheck })),
    ]);
    await timeUntil(killHttpd(rs[0]!), [line(VIP3, rs[1]!, 2)], DOWN_BOUND_MS, [`-t ${VIP3}:80 -r ${rs[0]!.address}:80`]);
    expect((await d.exec(`cat ${LOG}`)).stdout).toContain(`tcp/${VIP3}:80 → ${rs[0]!.address}:80 down: connection refused (2 of 2 failed); removed (weight was 2)`);
    const [g] = await applyOk(d, [{ op: "getService", service: tcp(VIP3, 80), withDests: true }]);
    expect(g!.service.dests.map((x: { address: string; weight: number; health: { removed?: boolean } }) => [x.address, x.weight, x.health.removed ?? false]))
      .toEqual([[rs[1]!.address, 2, false], [rs[0]!.address, 2, true]]);
    expect(new Set(await httpRequests(d, VIP3, 80, 6))).toEqual(new Set(["rs2"]));
    await timeUntil(startHttpd(rs[0]!), [line(VIP3, rs[0]!, 2)], UP_BOUND_MS);
    expect((await d.exec(`cat ${LOG}`)).stdout).toContain(`tcp/${VIP3}:80 → ${rs[0]!.address}:80 up: tcp check passed (2 of 2); re-added at weight 2`);

    // The next up asks rs2 for a page it does not have: the running checker picks the new check up from the ledger
    // within a second and removes rs2 after fall failures (no restart); put back, the tcp check re-adds it.
    const missing = { ...CHECK, onFailure: "remove", http: { ...CHECK.http, path: "/missing.html" } };
    const rs2 = { address: rs[1]!.address, port: 80, forwarding: "nat", weight: 2 };
    const up = JSON.stringify({ v: 1, ops: [destOp(tcp(VIP3, 80), rs2, { owner: OWNER, healthCheck: missing })] });
    await timeUntil(`${HELPER} apply > /tmp/apply.out <<'EOF'\n${up}\nEOF\ngrep -q '"ok":true' /tmp/apply.out || { cat /tmp/apply.out >&2; exit 1; }`,
      [line(VIP3, rs[0]!, 2)], INTERVAL * 1000 + DOWN_BOUND_MS, [`-t ${VIP3}:80 -r ${rs[1]!.address}:80`]);
    expect((await d.exec(`cat ${LOG}`)).stdout).toContain(`tcp/${VIP3}:80 → ${rs[1]!.address}:80 down: status 404, not in 200 (2 of 2 failed); removed (weight was 2)`);
    // The up that puts the tcp check back (with rs2's declared settings, as the provider sends them) records them but
    // does not re-add a server the checker holds out: the checker re-adds it after rise successes of the new check.
    await applyOk(d, [destOp(tcp(VIP3, 80), rs2, { owner: OWNER, healthCheck: tcpCheck })]);
    const reAdded = `tcp/${VIP3}:80 → ${rs[1]!.address}:80 up: tcp check passed (2 of 2); re-added at weight 2`;
    await d.exec(`i=0; until grep -qF -- '${reAdded}' ${LOG}; do i=$((i+1)); [ $i -lt ${(INTERVAL * 1000 + UP_BOUND_MS + 3000) / 200} ] || { tail -n 20 ${LOG} >&2; exit 1; }; sleep 0.2; done`);
    expect(await ipvsadm(d, "-Sn")).toContain(line(VIP3, rs[1]!, 2));
  }, 60_000);
});
