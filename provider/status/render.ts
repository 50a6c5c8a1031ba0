// The status report as text (per director: a table like `ipvsadm -Ln --stats --rate` with declared-vs-kernel verdicts
// and a table of its DirectorSettings; per real server host, its VIPs and sysctls; then one sentence per drifted entry,
// settings or host, then the real servers' health apart from drift) or as one JSON document. Pure.
import { printable, redact } from "../session/errors";
import { hostDrifted, type HostReport } from "./hosts";
import { healthText, type DirectorReport, type FieldDifference, type RealServerReport, type ServiceReport, type SettingReport, type SettingsReport, type StatusReport } from "./compare";

/** A setting's value as a person reads it: "rr", "none", "timeout=300 netmask=255.255.255.0", "sh-port,sh-fallback". */
export function formatValue(v: unknown): string {
  if (v === undefined || v === null) return "none";
  if (Array.isArray(v)) return v.length ? v.map(formatValue).join(",") : "none";
  if (typeof v === "object") return Object.entries(v).map(([k, x]) => `${k}=${formatValue(x)}`).join(" ");
  return String(v);
}

/** "scheduler: declared rr, kernel wlc". */
export function formatDifference(d: Pick<FieldDifference, "field" | "declared"> & { kernel?: unknown }): string {
  return `${d.field}: declared ${formatValue(d.declared)}, kernel ${formatValue(d.kernel)}`;
}

function verdict(e: ServiceReport | RealServerReport): string {
  switch (e.status) {
    case "ok":
      return "ok";
    case "differs":
      return e.differences.map(formatDifference).join("; ");
    case "missing":
      return "missing in kernel";
    case "unmanaged":
      return "sorry" in e && e.sorry ? "sorry server (added by the health checker: no real server is healthy)" : "not managed by this stack";
    case "unknown":
      return "unknown (director not read)";
  }
}

/** "root@10.10.0.11:22 via ops@203.0.113.5:22". */
const hostLabel = (h: HostReport) => [`${h.user}@${h.host}`, ...(h.via?.length ? [`via ${h.via.join(" via ")}`] : [])].join(" ");

/** A VIP's place: "on lo", or "" when the host's record does not list it. */
const onDevice = (v: HostReport["vips"][number]) => (v.device !== null ? ` on ${v.device}` : "");

/** What differs on a drifted host: "vip 192.0.2.20 missing on lo; net.ipv4.conf.all.arp_ignore: declared 1, kernel 0". */
function hostDifferences(h: HostReport): string {
  if (h.status === "missing") return "not prepared: the host has no record of it (up prepares it)";
  return [
    ...h.vips.filter((v) => v.status === "missing").map((v) => `vip ${v.address} missing${onDevice(v)}`),
    ...h.sysctls.filter((x) => x.status === "differs").map((x) => formatDifference({ field: x.name, declared: x.declared, kernel: x.kernel })),
  ].join("; ");
}

/** One line per drifted entry, naming the resource, the entry, the director and what differs. */
export function driftLines(report: StatusReport): string[] {
  const lines: string[] = [];
  const what = (e: ServiceReport | RealServerReport) => (e.status === "missing" ? "missing in kernel" : e.differences.map(formatDifference).join("; "));
  const drifted = (e: ServiceReport | RealServerReport) => e.resource !== undefined && (e.status === "differs" || e.status === "missing");
  for (const d of report.directors) {
    for (const s of d.services) {
      if (drifted(s)) lines.push(`VirtualService ${s.resource} (${s.service} on ${d.director}): ${what(s)}`);
      for (const r of s.realServers)
        if (drifted(r))
          lines.push(`${r.pool !== undefined ? "RealServerPool" : "RealServer"} ${r.resource} (${r.realServer} of ${s.service} on ${d.director}): ${what(r)}`);
    }
    const st = d.settings;
    if (st?.status === "differs")
      lines.push(`DirectorSettings ${st.resource} (on ${d.director}): ${st.fields.filter((f) => f.status === "differs").map(formatDifference).join("; ")}`);
  }
  for (const h of report.hosts) if (hostDrifted(h)) lines.push(`RealServerHost ${h.resource} (${hostLabel(h)}): ${hostDifferences(h)}`);
  return lines;
}

const COLUMNS = ["Entry", "Resource", "Sched/Fwd", "Weight", "ActConn", "InActConn", "Conns", "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS", "Status"];
/** Columns aligned right (numbers). */
const NUMERIC = new Set([3, 4, 5, 6, 7, 8, 9, 10, 11]);
const SETTING_COLUMNS = ["Setting", "Declared", "Kernel", "Status"];

/** Rows (the first: the column names) aligned; the last cell of a row is never padded. */
function table(rows: string[][], numeric: ReadonlySet<number> = NUMERIC): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) =>
    r
      .map((cell, i) => (i === r.length - 1 ? cell : numeric.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd(),
  );
}

const n = (v: number | undefined) => (v === undefined ? "" : String(v));

function serviceRow(s: ServiceReport): string[] {
  const st = s.stats;
  const scheduler = (s.kernel ?? s.declared)?.scheduler;
  return [s.service, s.resource ?? "-", formatValue(scheduler), "", "", "", n(st?.conns), n(st?.cps), n(st?.inPps), n(st?.outPps), n(st?.inBps), n(st?.outBps), verdict(s)];
}

function destRow(r: RealServerReport): string[] {
  const st = r.stats;
  const settings = r.kernel ?? r.declared;
  // A checked real server's health follows its verdict: a depooled one is health, not drift.
  const health = r.health ? ` [health: ${healthText(r.health)}]` : "";
  return [
    `  -> ${r.realServer}`,
    r.resource ?? "-",
    formatValue(settings?.forwarding),
    // The kernel's weight (0 while depooled); none while the checker has removed it.
    r.health?.removed ? "-" : n(settings?.weight as number | undefined),
    n(r.activeConns),
    n(r.inactiveConns),
    n(st?.conns),
    n(st?.cps),
    n(st?.inPps),
    n(st?.outPps),
    n(st?.inBps),
    n(st?.outBps),
    verdict(r) + health,
  ];
}

function settingRow(f: SettingReport, unknown: string): string[] {
  const status = f.status === "unknown" ? unknown : f.status;
  return [f.field, formatValue(f.declared), f.status === "unknown" ? "" : formatValue(f.kernel), status];
}

/** "DirectorSettings <name>: <verdict>", then each declared setting with the kernel's value. */
function settingsSection(st: SettingsReport): string[] {
  const verdicts = { ok: "ok", differs: "drift", unknown: st.error !== undefined ? `cannot read them: ${st.error}` : "unknown (director not read)" };
  const unknown = st.error !== undefined ? "unknown (settings not read)" : "unknown (director not read)";
  const rows = [SETTING_COLUMNS, ...st.fields.map((f) => settingRow(f, unknown))];
  return [`  DirectorSettings ${st.resource}: ${verdicts[st.status]}`, ...table(rows, new Set()).map((l) => `    ${l}`)];
}

function directorSection(d: DirectorReport): string[] {
  const head = `Director ${d.director} (${d.user}@${d.director})${d.error !== undefined ? `: cannot read it: ${d.error}` : ""}`;
  const rows = [COLUMNS, ...d.services.flatMap((s) => [serviceRow(s), ...s.realServers.map(destRow)])];
  // A director with only DirectorSettings has no entry table.
  const lines = [head, ...(d.services.length ? table(rows).map((l) => `  ${l}`) : [])];
  if (d.otherServices.length) lines.push(`  Also on this director, not managed by this stack: ${d.otherServices.join(", ")}`);
  if (d.checker)
    lines.push(
      d.checker.running
        ? "  Health checker: running"
        : d.checker.error !== undefined
          ? `  Health checker: cannot tell whether it runs: ${d.checker.error}`
          : "  Health checker: NOT RUNNING (no real server is depooled or restored; the weights stay as they are)",
    );
  if (d.settings) lines.push(...settingsSection(d.settings));
  return lines;
}

const HOST_COLUMNS = ["Prepared", "Declared", "Host", "Status"];

/** "Real server host <name> (user@host:port via …, dr): <verdict>", then each VIP and sysctl, declared and as read. */
function hostSection(h: HostReport): string[] {
  const verdicts = { ok: "ok", differs: "drift", missing: "drift: not prepared (the host has no record of it)", unknown: `cannot read it: ${h.error ?? "not read"}` };
  const read = (present: string) => (h.status === "unknown" ? "" : h.status === "missing" ? "not recorded" : present);
  const status = (s: "ok" | "missing" | "differs" | "unknown", missing: string) =>
    s === "unknown" ? "unknown (host not read)" : s === "ok" ? "ok" : missing;
  const rows = [
    HOST_COLUMNS,
    ...h.vips.map((v) => [`vip ${v.address}${onDevice(v)}`, "present", read(v.status === "ok" ? "present" : "missing"), status(v.status, `missing${onDevice(v)}`)]),
    ...h.sysctls.map((x) => [x.name, String(x.declared), read(formatValue(x.kernel)), status(x.status, "differs")]),
  ];
  return [`Real server host ${h.resource} (${hostLabel(h)}, ${h.forwarding}): ${verdicts[h.status]}`, ...table(rows, new Set()).map((l) => `  ${l}`)];
}

/** The human-readable report; counters are the kernel's (rates: per second over its last 2 s estimate). */
export function renderText(report: StatusReport): string {
  const services = report.directors.reduce((k, d) => k + d.services.length, 0);
  const verdicts = { ok: "everything matches", drift: "drift", error: "error" };
  const hosts = report.hosts.length ? `, ${report.hosts.length} real server host(s)` : "";
  const lines = [`Stack ${report.stack}: ${verdicts[report.status]} (${report.directors.length} director(s), ${services} service(s)${hosts})`, ""];
  for (const d of report.directors) lines.push(...directorSection(d), "");
  for (const h of report.hosts) lines.push(...hostSection(h), "");
  if (report.problems.length) lines.push("Errors:", ...report.problems.map((p) => `  ${p}`), "");
  const drift = driftLines(report);
  if (drift.length) lines.push("Drift:", ...drift.map((l) => `  ${l}`), "");
  if (report.health.length) lines.push("Health (the checker's doing, not drift):", ...report.health.map((l) => `  ${l}`), "");
  return lines.join("\n");
}

export function renderJson(report: StatusReport): string {
  return JSON.stringify(report, null, 2) + "\n";
}

/** The report as printed: text or JSON, with every credential of the state redacted (error messages may quote one). */
export function render(report: StatusReport, opts: { json: boolean; credentials: readonly string[] }): string {
  // Addresses, names and error texts in the report come from directors: no control character reaches the terminal.
  const text = redact(opts.json ? renderJson(report) : renderText(report), opts.credentials);
  return printable(text, opts.json ? { json: true } : { lines: true });
}
