// The director-settings half of the in-memory directors (fakeDirectors.ts): one director's sysctls, timeouts and sync
// daemons with the helper's ensureSettings / deleteSettings / getSettings rules (PROTOCOL.md "Director settings ops"):
// one owner per director (formerOwner moves the record), originals recorded before an item is first set and put back
// when it stops being managed.
// The real helper is tested against a real kernel in test/lab; this only has to follow PROTOCOL.md.
import { ALL_SYSCTLS } from "../../provider/schema";
import { HelperError, type Daemon, type Op, type OpResults, type Settings, type SysctlValue, type Timeouts } from "../../provider/protocol";

type SettingsOp = Extract<Op, { op: "ensureSettings" | "deleteSettings" | "getSettings" }>;
type Kind = "sysctl" | "timeout" | "daemon";

/** Kernel defaults of the sysctls a test looks at; the rest start at 0. */
const DEFAULTS: Record<string, SysctlValue> = {
  "net.ipv4.vs.conn_reuse_mode": 1,
  "net.ipv4.vs.sync_threshold": [3, 50],
  "net.ipv4.vs.est_cpulist": "0-1",
  "net.ipv4.vs.pmtu_disc": 1,
  "net.ipv4.vs.snat_reroute": 1,
  "net.ipv4.vs.run_estimation": 1,
  "net.ipv4.vs.sync_version": 1,
  "net.ipv4.vs.sync_ports": 1,
  "net.ipv4.vs.amemthresh": 1024,
  "net.ipv4.vs.am_droprate": 10,
};
const TIMEOUT_FIELDS = ["tcp", "tcpfin", "udp"] as const;

export class FakeSettings {
  readonly sysctls = new Map<string, SysctlValue>(ALL_SYSCTLS.map((d) => [d.name, DEFAULTS[d.name] ?? 0]));
  /** Sysctls this kernel lacks (their files are absent). */
  readonly missing = new Set<string>();
  timeouts: Timeouts = { tcp: 900, tcpfin: 120, udp: 300 };
  daemons: Daemon[] = [];
  /** The ledger's settings record: its owner, and the original value of every managed item ("kind:name"). */
  record: { owner: string; original: Map<string, unknown>; managed: Set<string> } | null = null;

  constructor(private readonly director: string) {}

  private fail(code: "OWNED" | "BAD_REQUEST" | "UNSUPPORTED_KERNEL", message: string): HelperError {
    return new HelperError(this.director, code, message);
  }

  private checkNames(names: string[]): void {
    for (const n of names) if (!ALL_SYSCTLS.some((d) => d.name === n)) throw this.fail("BAD_REQUEST", `unknown sysctl ${n}.`);
    for (const n of names) if (this.missing.has(n)) throw this.fail("UNSUPPORTED_KERNEL", `${n} does not exist on this kernel (nothing was changed).`);
  }

  private get(key: string): unknown {
    const [kind, name] = key.split(":") as [Kind, string];
    if (kind === "sysctl") return this.sysctls.get(name);
    if (kind === "timeout") return this.timeouts[name as keyof Timeouts];
    return this.daemons.find((d) => d.state === name) ?? null;
  }

  /** Sets one item; returns whether it changed. A daemon's fields left out take the kernel's defaults. */
  private set(key: string, v: unknown): boolean {
    if (JSON.stringify(this.get(key)) === JSON.stringify(v)) return false;
    const [kind, name] = key.split(":") as [Kind, string];
    if (kind === "sysctl") this.sysctls.set(name, v as SysctlValue);
    else if (kind === "timeout") this.timeouts[name as keyof Timeouts] = v as number;
    else this.daemons = [...this.daemons.filter((d) => d.state !== name), ...(v ? [v as Daemon] : [])];
    return true;
  }

  private wanted(s: Settings): Map<string, unknown> {
    const m = new Map<string, unknown>();
    for (const [n, v] of Object.entries(s.sysctls)) m.set(`sysctl:${n}`, v);
    for (const f of TIMEOUT_FIELDS) if (s.timeouts?.[f]) m.set(`timeout:${f}`, s.timeouts[f]);
    for (const d of s.daemons) m.set(`daemon:${d.state}`, { maxLen: 1472, group: "224.0.0.81", port: 8848, ttl: 1, ...d });
    return m;
  }

  run(op: SettingsOp): OpResults[SettingsOp["op"]] {
    switch (op.op) {
      case "getSettings":
        this.checkNames(op.sysctls);
        return {
          settings: {
            sysctls: Object.fromEntries(op.sysctls.map((n) => [n, this.sysctls.get(n)!])),
            timeouts: { ...this.timeouts },
            daemons: this.daemons.map((d) => ({ ...d })),
          },
          owner: this.record?.owner ?? null,
        };
      case "ensureSettings": {
        const moving = op.formerOwner !== undefined && this.record?.owner === op.formerOwner;
        if (this.record && this.record.owner !== op.owner && !moving)
          throw this.fail("OWNED", `the settings of this director are held by stack ${this.record.owner}.`);
        this.checkNames(Object.keys(op.settings.sysctls));
        // A renamed stack: the record moves as it is (the helper moves it back when the ensure fails; here only
        // checkNames fails, before anything).
        if (moving) this.record!.owner = op.owner;
        const rec = (this.record ??= { owner: op.owner, original: new Map(), managed: new Set() });
        const want = this.wanted(op.settings);
        let changed = false;
        for (const key of [...rec.managed]) if (!want.has(key)) {
          changed = this.set(key, rec.original.get(key)) || changed;
          rec.managed.delete(key);
          rec.original.delete(key);
        }
        for (const [key, v] of want) {
          if (!rec.original.has(key)) rec.original.set(key, this.get(key));
          rec.managed.add(key);
          changed = this.set(key, v) || changed;
        }
        return { changed, settings: op.settings };
      }
      case "deleteSettings": {
        const rec = this.record;
        if (!rec || rec.owner !== op.owner) return { changed: false };
        let changed = false;
        for (const key of rec.managed) changed = this.set(key, rec.original.get(key)) || changed;
        this.record = null;
        return { changed };
      }
    }
  }
}
