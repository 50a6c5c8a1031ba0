// Health checks (issue 27), the director's side: `ipvs-helper health` reads the checks the ledger records (sent
// with ensureDest / ensureService, as the provider will), probes real httpd servers in namespaces from the lab
// director, and the real ipvsadm shows what it did to the kernel. The lab director has no systemd, so the checker
// is started by hand (detached), as the README says to do without systemd. https (openssl s_server) and dns (dnsmasq,
// over UDP and TCP) checks probe real servers of those kinds. The director has a persistent disk, so the last test can
// reboot it: there the lab's init stands in for systemd and starts the checker's unit, which the helper itself wrote
// and enabled (it does wherever /run/systemd/system exists), after the boot restore.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDirector, type LabDirector } from "../director";
import { ipvsadm } from "../ipvsadm";
import { addRealServers, addVip, awaitListener, httpRequests, realServersScript, startHttpd, stopHttpd, type LabRealServer } from "../realServers";
import { applyOk, destOp, HELPER, installHelper, svcOp, tcp, udp } from "./helperLab";

const VIP = "192.0.2.10";
const VIP2 = "192.0.2.11";
const VIP3 = "192.0.2.12";
const HTTPS_VIP = "192.0.2.13";
const DNS_VIP = "192.0.2.14";
const OTHER_VIP = "192.0.2.15";
/** The name the TLS server wants as SNI. */
const SNI = "www.health.lab";
const IP = "/sbin/ip";
const OWNER = "acme/lb/health";
const LOG = "/run/lab/health.log";
const PID = "/run/lab/health.pid";
const STATE = "/var/lib/pulumi-ipvs-health/state.json";
const HEALTH_UNIT = "/etc/systemd/system/pulumi-ipvs-health.service";
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
  /** Starts the httpd of every real server whose namespace runs none (a failed test may have left one dead). */
  const healAll = () =>
    d.exec(rs.map(startHttpd).join("\n"));
  /** Waits until VIP and VIP2 hold their declared weights again. */
  const healed = () => timeUntil("", [...rs.slice(0, 3).map((s, i) => line(VIP, s, 3 + i)), ...rs.slice(0, 3).map((s) => line(VIP2, s, 1))], UP_BOUND_MS,
    [`-t ${VIP2}:80 -r ${rs[3]!.address}:80`]);
  const line = (svc: string, s: LabRealServer, w: number) => `-a -t ${svc}:80 -r ${s.address}:80 -m -w ${w}`;
  /** The ipvsadm -Sn line of a NAT real server of a tcp (t) or udp (u) service at port. */
  const entry = (proto: "t" | "u", svc: string, port: number, s: LabRealServer, w: number) => `-a -${proto} ${svc}:${port} -r ${s.address}:${port} -m -w ${w}`;
  /** Kills the processes called comm in s's namespace (its httpd stays). */
  const killIn = (s: LabRealServer, comm: string) => `for p in $(${IP} netns pids ${s.name}); do [ "$(cat /proc/$p/comm)" != ${comm} ] || kill $p; done`;
  /**
   * Ends an action of timeUntil that starts servers: waits until each listens on port, then restarts the clock, so
   * that recovery is measured from when the server can answer (a probe that came while it was still starting fails,
   * and rightly counts against rise).
   */
  const thenListening = (servers: LabRealServer[], port: number) =>
    `${servers.map((s) => awaitListener(s, port)).join("\n")}\nstart=$(cut -d' ' -f1 /proc/uptime | tr -d .)`;
  const serveHttp = (servers: LabRealServer[]) => `${servers.map(startHttpd).join("\n")}\n${thenListening(servers, 80)}`;
  /** A shell action that sends one request to the helper and fails unless every op succeeded. */
  const applyAction = (ops: object[]) =>
    `${HELPER} apply > /tmp/apply.out <<'EOF'\n${JSON.stringify({ v: 1, ops })}\nEOF\ngrep -q '"ok":true' /tmp/apply.out && ! grep -q '"ok":false' /tmp/apply.out || { cat /tmp/apply.out >&2; exit 1; }`;
  const log = async () => (await d.exec(`cat ${LOG}`)).stdout;
  /** The read-back health of the real server at address of svc. */
  const healthOf = async (svc: object, address: string) => {
    const [g] = await applyOk(d, [{ op: "getService", service: svc, withDests: true }]);
    return g!.service.dests.find((x: { address: string }) => x.address === address)?.health as { last?: string; depooled?: boolean } | undefined;
  };
  /** Polls cond every 0.3 s until it holds; throws past boundMs. */
  async function waitFor(what: string, cond: () => Promise<boolean>, boundMs: number): Promise<void> {
    const deadline = Date.now() + boundMs;
    while (!(await cond())) {
      if (Date.now() > deadline) throw new Error(`${what}: not within ${boundMs} ms; the checker's log ends:\n${(await log()).split("\n").slice(-15).join("\n")}`);
      await new Promise((r) => setTimeout(r, 300));
    }
  }

  /**
   * Runs `action` on the director, then polls ipvsadm there every 0.2 s (a fork costs much under TCG: faster polling slows the checker it measures) until the table holds every `want` line (or
   * lacks every `gone` line); returns the milliseconds that took, measured on the director (from the action's start, or
   * from where it sets `start` again: thenListening). Throws past boundMs + 3 s.
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
    d = await startDirector({ persistentDisk: true });
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
  }, 240_000); // a first boot formats the persistent disk, on a host that may be running other guests

  afterAll(async () => {
    if (d) await stopChecker().catch(() => undefined);
    await d?.stop();
  });

  it("quiesces a real server whose httpd dies within fall × interval + timeout (+1 interval), and the VIP answers all", async () => {
    const took = await timeUntil(stopHttpd(rs[0]!), [line(VIP, rs[0]!, 0)], DOWN_BOUND_MS);
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

    const back = await timeUntil(serveHttp([rs[0]!]), [line(VIP, rs[0]!, 3)], UP_BOUND_MS);
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
    await timeUntil(stopHttpd(rs[1]!), [line(VIP, rs[1]!, 0), line(VIP2, rs[1]!, 0)], DOWN_BOUND_MS);
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
    await timeUntil(all.map(stopHttpd).join("\n"), [...all.map((s) => line(VIP, s, 0)), sorry], DOWN_BOUND_MS);
    const log = (await d.exec(`cat ${LOG}`)).stdout;
    const table = await ipvsadm(d, "-Sn");
    const vip2 = all.filter((s) => table.includes(line(VIP2, s, 1)));
    expect(vip2.length).toBe(2);
    expect(all.filter((s) => table.includes(line(VIP2, s, 0))).length).toBe(1);
    expect(log).toContain(`tcp/${VIP2}:80: kept pooled by minHealthy (2 of 3 must stay): ${vip2.map((s) => `${s.address}:80`).join(", ")}`);
    expect(log).toContain(`tcp/${VIP2}:80: no real server is healthy; sorry server ${rs[3]!.address}:80 added (weight 1)`);
    // The kept servers are down too (minHealthy keeps them against a bad check): of VIP2, only the sorry server answers.
    expect(new Set((await httpRequests(d, VIP2, 80, 6, { allowFailures: true })).filter((a) => a !== ""))).toEqual(new Set(["rs4"]));

    await timeUntil(serveHttp(all), [...all.map((s) => line(VIP2, s, 1)), line(VIP, rs[0]!, 3), line(VIP, rs[1]!, 4), line(VIP, rs[2]!, 5)],
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
    await timeUntil(stopHttpd(rs[0]!), [line(VIP3, rs[1]!, 2)], DOWN_BOUND_MS, [`-t ${VIP3}:80 -r ${rs[0]!.address}:80`]);
    expect((await d.exec(`cat ${LOG}`)).stdout).toContain(`tcp/${VIP3}:80 → ${rs[0]!.address}:80 down: connection refused (2 of 2 failed); removed (weight was 2)`);
    const [g] = await applyOk(d, [{ op: "getService", service: tcp(VIP3, 80), withDests: true }]);
    expect(g!.service.dests.map((x: { address: string; weight: number; health: { removed?: boolean } }) => [x.address, x.weight, x.health.removed ?? false]))
      .toEqual([[rs[1]!.address, 2, false], [rs[0]!.address, 2, true]]);
    expect(new Set(await httpRequests(d, VIP3, 80, 6))).toEqual(new Set(["rs2"]));
    await timeUntil(serveHttp([rs[0]!]), [line(VIP3, rs[0]!, 2)], UP_BOUND_MS);
    expect((await d.exec(`cat ${LOG}`)).stdout).toContain(`tcp/${VIP3}:80 → ${rs[0]!.address}:80 up: tcp check passed (2 of 2); re-added at weight 2`);

    // The next up asks rs2 for a page it does not have: the running checker picks the new check up from the ledger
    // within a second and removes rs2 after fall failures (no restart); put back, the tcp check re-adds it.
    const missing = { ...CHECK, onFailure: "remove", http: { ...CHECK.http, path: "/missing.html" } };
    const rs2 = { address: rs[1]!.address, port: 80, forwarding: "nat", weight: 2 };
    await timeUntil(applyAction([destOp(tcp(VIP3, 80), rs2, { owner: OWNER, healthCheck: missing })]),
      [line(VIP3, rs[0]!, 2)], INTERVAL * 1000 + DOWN_BOUND_MS, [`-t ${VIP3}:80 -r ${rs[1]!.address}:80`]);
    expect((await d.exec(`cat ${LOG}`)).stdout).toContain(`tcp/${VIP3}:80 → ${rs[1]!.address}:80 down: status 404, not in 200 (2 of 2 failed); removed (weight was 2)`);
    // It saw the change through its inotify watch of the ledger (re-read on changes), not a fallback re-read.
    expect(await log()).toContain("watching the ledger: re-reading it on its changes and every 30s");
    expect(await log()).not.toContain("not watching the ledger");
    // The up that puts the tcp check back (with rs2's declared settings, as the provider sends them) records them but
    // does not re-add a server the checker holds out: the checker re-adds it after rise successes of the new check.
    await applyOk(d, [destOp(tcp(VIP3, 80), rs2, { owner: OWNER, healthCheck: tcpCheck })]);
    const reAdded = `tcp/${VIP3}:80 → ${rs[1]!.address}:80 up: tcp check passed (2 of 2); re-added at weight 2`;
    await d.exec(`i=0; until grep -qF -- '${reAdded}' ${LOG}; do i=$((i+1)); [ $i -lt ${(INTERVAL * 1000 + UP_BOUND_MS + 3000) / 200} ] || { tail -n 20 ${LOG} >&2; exit 1; }; sleep 0.2; done`);
    expect(await ipvsadm(d, "-Sn")).toContain(line(VIP3, rs[1]!, 2));
  }, 60_000);
  it("https against a real TLS server that wants http.host as SNI: killed → quiesced, restarted → restored; a wrong status, body or SNI fails", async () => {
    const [s] = await addRealServers(d, 1);
    const svc = tcp(HTTPS_VIP, 443);
    const dir = `/run/lab/${s!.name}`;
    // openssl s_server -WWW serves the files of its directory over HTTP/1.0 (a missing one: "200 ok" and an error
    // text); -servername_fatal answers a client whose SNI is another name with a fatal alert, so a passing check
    // proves that the check sent http.host as SNI.
    await d.exec(`set -e; cd ${dir}
for n in default sni; do openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=$n -keyout $n.key -out $n.crt 2>/dev/null; done`);
    // Redirected as a whole: a shell left waiting for the server would hold the SSH session's output open.
    const startTls = `(cd ${dir} && exec setsid ${IP} netns exec ${s!.name} openssl s_server -accept 443 -WWW -cert default.crt -key default.key \
-servername ${SNI} -servername_fatal -cert2 sni.crt -key2 sni.key) </dev/null >>${dir}.tls.log 2>&1 &
${awaitListener(s!, 443)}`;
    // A TLS handshake costs the checker and openssl real CPU time, which a TCG guest on a busy host may not get
    // within 0.5 s: this check waits 1.5 s, and its bound grows by the difference.
    const timeout = 1.5;
    const downBound = DOWN_BOUND_MS + (timeout - CHECK.timeoutSeconds) * 1000;
    const check = (http: object) =>
      ({ ...CHECK, type: "https", port: 443, timeoutSeconds: timeout, http: { path: "/index.html", method: "GET", host: SNI, expectStatus: "200", expectBody: s!.name, ...http } });
    const declare = (http: object = {}) => [destOp(svc, { address: s!.address, port: 443, forwarding: "nat", weight: 7 }, { owner: OWNER, healthCheck: check(http) })];
    const at = (w: number) => entry("t", HTTPS_VIP, 443, s!, w);
    const name = `tcp/${HTTPS_VIP}:443 → ${s!.address}:443`;
    const last = async () => (await healthOf(svc, s!.address))?.last ?? "";

    await d.exec(startTls);
    await applyOk(d, [svcOp(svc, { scheduler: "rr" }, { owner: OWNER }), ...declare()]);
    await waitFor("the https check passes", async () => (await last()) === "ok", 2 * INTERVAL * 1000 + 3000);

    await timeUntil(killIn(s!, "openssl"), [at(0)], downBound);
    expect(await log()).toContain(`${name} down: connection refused (2 of 2 failed); quiesced, weight 7 → 0`);
    await timeUntil(`${startTls}\n${thenListening([s!], 443)}`, [at(7)], UP_BOUND_MS);
    expect(await log()).toContain(`${name} up: https check passed (2 of 2); restored, weight 0 → 7`);

    // The server is up but answers wrong: a status outside expectStatus depools it (the new check is read from the
    // ledger within a second) ...
    await timeUntil(applyAction(declare({ expectStatus: "301-302" })), [at(0)], INTERVAL * 1000 + downBound);
    expect(await log()).toContain(`${name} down: status 200, not in 301-302 (2 of 2 failed); quiesced, weight 7 → 0`);
    // ... and a body without expectBody or another SNI keep it out; each probe's result says why.
    await applyOk(d, declare({ path: "/missing.html" }));
    await waitFor("the body mismatch", async () => /^status 200 but the first \d+ bytes of the body lack "rs\d+"$/.test(await last()), 2 * INTERVAL * 1000 + 3000);
    await applyOk(d, declare({ host: "other.lab" }));
    await waitFor("the SNI refused", async () => /^TLS handshake failed: .*unrecognized name/.test(await last()), 2 * INTERVAL * 1000 + 3000);
    expect(await ipvsadm(d, "-Sn")).toContain(at(0));
    await timeUntil(applyAction(declare()), [at(7)], INTERVAL * 1000 + UP_BOUND_MS);
  }, 90_000);

  it("dns over udp and over tcp against a real DNS server (dnsmasq): killed → both quiesced, restarted → both restored", async () => {
    const [s] = await addRealServers(d, 1);
    const startDns = `setsid ${IP} netns exec ${s!.name} dnsmasq --keep-in-foreground --port=53 --listen-address=${s!.address} --bind-interfaces \
--no-resolv --no-hosts --address=/svc.health.lab/192.0.2.99 --user=root --pid-file=/run/lab/${s!.name}.dns.pid --log-facility=- \
</dev/null >>/run/lab/${s!.name}.dns.log 2>&1 &
${awaitListener(s!, 53)}`;
    const services = [["u", udp(DNS_VIP, 53), "udp"], ["t", tcp(DNS_VIP, 53), "tcp"]] as const;
    const dnsCheck = (transport: string) => ({ ...CHECK, type: "dns", port: 53, http: undefined, dns: { name: "svc.health.lab", type: "A", transport } });
    await d.exec(startDns);
    await applyOk(d, services.flatMap(([, svc, transport]) => [
      svcOp(svc, { scheduler: "rr" }, { owner: OWNER }),
      destOp(svc, { address: s!.address, port: 53, forwarding: "nat", weight: 2 }, { owner: OWNER, healthCheck: dnsCheck(transport) }),
    ]));
    for (const [, svc, transport] of services) {
      await waitFor(`the dns check over ${transport} passes`, async () => (await healthOf(svc, s!.address))?.last === "ok", 2 * INTERVAL * 1000 + 3000);
    }

    await timeUntil(killIn(s!, "dnsmasq"), services.map(([p]) => entry(p, DNS_VIP, 53, s!, 0)), DOWN_BOUND_MS);
    const down = await log();
    for (const [, , transport] of services) {
      // UDP too: the real server's ICMP port unreachable refuses the question.
      expect(down).toContain(`${transport}/${DNS_VIP}:53 → ${s!.address}:53 down: connection refused (2 of 2 failed); quiesced, weight 2 → 0`);
    }
    await timeUntil(`${startDns}\n${thenListening([s!], 53)}`, services.map(([p]) => entry(p, DNS_VIP, 53, s!, 2)), UP_BOUND_MS);
    const up = await log();
    for (const [, , transport] of services) {
      expect(up).toContain(`${transport}/${DNS_VIP}:53 → ${s!.address}:53 up: dns check passed (2 of 2); restored, weight 0 → 2`);
    }
  }, 60_000);

  it("two stacks' checks on one director: each is run; one stack deleting its checks leaves the other's running", async () => {
    await healAll();
    await healed();
    const other = "acme/web/health";
    const svc = tcp(OTHER_VIP, 80);
    await applyOk(d, [
      svcOp(svc, { scheduler: "rr" }, { owner: other }),
      destOp(svc, { address: rs[3]!.address, port: 80, forwarding: "nat", weight: 6 }, { owner: other, healthCheck: CHECK }),
    ]);
    await timeUntil(stopHttpd(rs[3]!), [line(OTHER_VIP, rs[3]!, 0)], DOWN_BOUND_MS);
    expect(await log()).toContain(`tcp/${OTHER_VIP}:80 → ${rs[3]!.address}:80 down: connection refused (2 of 2 failed); quiesced, weight 6 → 0`);
    expect((await d.exec("cat /run/lab/metrics/ipvs_health.prom")).stdout).toContain(
      `ipvs_health_depooled{service="tcp/${OTHER_VIP}:80",real_server="${rs[3]!.address}:80",stack="${other}"} 1`);

    // The other stack goes (its service, real server and check with it); the first stack's checks still run, and
    // the checker's unit stays installed and enabled for them.
    await applyOk(d, [{ op: "deleteService", service: svc, owner: other }]);
    await healAll();
    await timeUntil(stopHttpd(rs[0]!), [line(VIP, rs[0]!, 0), line(VIP2, rs[0]!, 0)], DOWN_BOUND_MS);
    await timeUntil(serveHttp([rs[0]!]), [line(VIP, rs[0]!, 3), line(VIP2, rs[0]!, 1)], UP_BOUND_MS);
    await d.exec(`test -f ${HEALTH_UNIT} && test -L /etc/systemd/system/multi-user.target.wants/pulumi-ipvs-health.service`);
  }, 60_000);

  it("a crash-like reboot: the checker starts after the boot restore, keeps a depooled server out, depools one down at boot within fall × interval", async () => {
    await healAll();
    await healed();
    // Only VIP stays (rs1..rs3 at weights 3, 4, 5): the other services' real servers are not brought back below.
    await applyOk(d, [tcp(VIP2, 80), tcp(VIP3, 80), tcp(HTTPS_VIP, 443), udp(DNS_VIP, 53), tcp(DNS_VIP, 53)]
      .map((service) => ({ op: "deleteService", service, owner: OWNER })));
    // The helper wrote the checker's unit (this director has /run/systemd/system), after the boot unit.
    const unit = (await d.exec(`cat /etc/systemd/system/multi-user.target.wants/pulumi-ipvs-health.service`)).stdout;
    expect(unit).toContain(`\nExecStart=${HELPER} health\n`);
    expect(unit).toMatch(/^Type=simple$/m);
    expect(unit).toMatch(/^After=.* pulumi-ipvs\.service$/m);
    await d.exec("test -L /etc/systemd/system/multi-user.target.wants/pulumi-ipvs.service");

    // rs1 dies before the reboot: depooled, and the state file on the persistent disk says so.
    await timeUntil(stopHttpd(rs[0]!), [line(VIP, rs[0]!, 0)], DOWN_BOUND_MS);
    type Saved = { dests: Array<{ address: string; since: string; depooled: boolean }> };
    const saved = async (s: LabRealServer) => (JSON.parse((await d.exec(`cat ${STATE}`)).stdout) as Saved).dests.find((x) => x.address === s.address);
    await waitFor("rs1's depool saved", async () => (await saved(rs[0]!))?.depooled === true, 3000);
    const rs1Since = (await saved(rs[0]!))!.since;
    // The real servers stand for machines that keep running while the director reboots: a one-shot lab unit (started
    // before the checker, as every one-shot is) brings their namespaces back, with an httpd in rs3 only: rs1 is still
    // dead, and rs2 is down at boot.
    await d.exec(`set -e; mkdir -p /usr/local/lib/lab; cat > /usr/local/lib/lab/realservers.sh
printf '[Unit]\\nDescription=lab real servers\\n[Service]\\nType=oneshot\\nExecStart=/bin/sh /usr/local/lib/lab/realservers.sh\\n' > /etc/systemd/system/lab-realservers.service
ln -sf ../lab-realservers.service /etc/systemd/system/multi-user.target.wants/`, { stdin: realServersScript(rs.slice(0, 3), undefined, (s) => s === rs[2]) });

    await d.reboot();

    const bootLog = (await d.exec("cat /var/log/boot-units.log")).stdout;
    expect(bootLog).toMatch(/lab-realservers\.service: exit 0\n[\s\S]*pulumi-ipvs\.service: exit 0\n[\s\S]*pulumi-ipvs-health\.service: .* health \(started, pid \d+\)\n$/);
    // The boot restore put the table back with rs1 at weight 0 (the checker's state holds it out), and the checker
    // kept it there: it never had to depool it again.
    const table = await ipvsadm(d, "-Sn");
    expect(table).toContain(line(VIP, rs[0]!, 0));
    expect(table).toContain(line(VIP, rs[2]!, 5));
    // rs2, down at boot, is depooled within fall × interval (+ timeout and one interval for the probe's phase) of
    // the checker's start, both measured on the director's clock.
    await timeUntil("", [line(VIP, rs[1]!, 0)], DOWN_BOUND_MS);
    const { stdout } = await d.exec(`pid=$(cat /run/boot-units/pulumi-ipvs-health.service.pid); touch /run/clock
tr '\\0' ' ' < /proc/$pid/cmdline; echo; cut -d' ' -f22 /proc/$pid/stat; cut -d' ' -f1 /proc/uptime; stat -c %y /run/clock`);
    const [cmdline, startTicks, uptime, clock] = stdout.trim().split("\n");
    expect(cmdline).toBe(`${HELPER} health `);
    const wall = /^(\S+) (\d\d:\d\d:\d\d\.\d{3})\d* \+0000$/.exec(clock!)!;
    const bootAt = Date.parse(`${wall[1]}T${wall[2]}Z`) - Number(uptime) * 1000;
    const took = Date.parse((await saved(rs[1]!))!.since) - (bootAt + Number(startTicks) * 10);
    console.log(`health: down at boot → depooled ${took} ms after the checker started (bound ${DOWN_BOUND_MS} ms)`);
    expect(took).toBeGreaterThan(0);
    expect(took).toBeLessThanOrEqual(DOWN_BOUND_MS);
    expect(await ipvsadm(d, "-Sn")).toContain(line(VIP, rs[2]!, 5));
    const bootCheckerLog = (await d.exec("cat /var/log/pulumi-ipvs-health.service.log")).stdout;
    expect(bootCheckerLog).toContain(`tcp/${VIP}:80 → ${rs[1]!.address}:80 down: connection refused (2 of 2 failed); quiesced, weight 4 → 0`);
    expect(bootCheckerLog).not.toContain(`→ ${rs[0]!.address}:80`);
    expect(bootCheckerLog).not.toContain(`→ ${rs[2]!.address}:80`);
    // The state survived: rs1 is still the server depooled before the reboot, and the checker restores it when it answers.
    expect((await saved(rs[0]!))).toMatchObject({ depooled: true, since: rs1Since });
    await timeUntil(serveHttp([rs[0]!]), [line(VIP, rs[0]!, 3)], UP_BOUND_MS);
  }, 180_000);
});
