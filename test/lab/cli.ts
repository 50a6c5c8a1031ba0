// `npm run lab -- <up|exec|reboot|down|status>`: lab directors for humans and for other tools (up prints one JSON line).
import { attachDirector, startDirector, type LabDirector } from "./director";
import { killVm, listVms, readVm } from "./vm";

const USAGE = `usage:
  npm run lab -- up [--name N] [--memory MiB] [--persistent-disk]
                                                 boot a director, print its connection as one JSON line; with
                                                 --persistent-disk /var/lib, /etc/systemd/system and /usr/local
                                                 survive a reboot and enabled units' ExecStart runs at boot
  npm run lab -- exec [--name N] -- <command…>   run a command as root in it (exit code propagated)
  npm run lab -- reboot [--name N]               kill it (SIGKILL) and boot it again on the same port and disk
  npm run lab -- down [--name N | --all]         stop directors
  npm run lab -- status                          one JSON line per running director`;

function connectionLine(d: LabDirector): string {
  const { name, host, port, user, privateKeyPath, hostKey, sudoUser, persistentDisk } = d;
  return JSON.stringify({ name, host, port, user, privateKeyPath, hostKey, sudoUser, persistentDisk });
}

function parse(argv: string[]): { cmd: string; flags: Map<string, string | true>; rest: string[] } {
  const [cmd = "", ...args] = argv;
  const flags = new Map<string, string | true>();
  const dashdash = args.indexOf("--");
  const own = dashdash >= 0 ? args.slice(0, dashdash) : args;
  for (let i = 0; i < own.length; i++) {
    const a = own[i]!;
    if (!a.startsWith("--")) throw new Error(`unexpected argument "${a}"\n${USAGE}`);
    const next = own[i + 1];
    if (a === "--all" || a === "--persistent-disk") flags.set(a.slice(2), true);
    else if (next !== undefined && !next.startsWith("--")) flags.set(a.slice(2), own[++i]!);
    else throw new Error(`${a} needs a value\n${USAGE}`);
  }
  return { cmd, flags, rest: dashdash >= 0 ? args.slice(dashdash + 1) : [] };
}

async function main(): Promise<number> {
  const { cmd, flags, rest } = parse(process.argv.slice(2));
  const name = String(flags.get("name") ?? "lab");
  switch (cmd) {
    case "up": {
      const started = Date.now();
      const memory = flags.get("memory");
      const d = await startDirector({
        name,
        memoryMiB: memory ? Number(memory) : undefined,
        persistentDisk: flags.get("persistent-disk") === true,
      });
      process.stderr.write(`lab director "${name}" up in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
      process.stdout.write(connectionLine(d) + "\n");
      return 0;
    }
    case "exec": {
      if (rest.length === 0) throw new Error(`exec needs a command after --\n${USAGE}`);
      const d = await attachDirector(name);
      const res = await d.exec(rest.join(" "), { check: false });
      process.stdout.write(res.stdout);
      process.stderr.write(res.stderr);
      return res.code;
    }
    case "reboot": {
      const started = Date.now();
      await (await attachDirector(name)).reboot();
      process.stderr.write(`lab director "${name}" rebooted in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
      return 0;
    }
    case "down": {
      const recs = flags.get("all") ? listVms() : [readVm(name)].flatMap((r) => r ?? []);
      if (recs.length === 0 && !flags.get("all")) process.stderr.write(`no running lab director named "${name}"\n`);
      for (const r of recs) {
        await killVm(r);
        process.stderr.write(`lab director "${r.name}" stopped\n`);
      }
      return 0;
    }
    case "status": {
      for (const r of listVms()) process.stdout.write(connectionLine(await attachDirector(r.name)) + "\n");
      return 0;
    }
    default:
      process.stderr.write(`${USAGE}\n`);
      return 2;
  }
}

main().then(
  (code) => process.exit(code),
  (e: Error) => {
    process.stderr.write(`lab: ${e.message}\n`);
    process.exit(1);
  },
);
