// restartVm's wait for a killed qemu, against real processes: a SIGKILLed process counts as gone only once it has
// closed its files (the new qemu needs its pid file lock and port), and a zombie has; a deadline names what hung.
import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { procStat, untilExited } from "./vm";

/** Starts `sh` with a child that exits after `childSeconds` and is never reaped (its parent then sleeps): its pid. */
async function unreapedChild(childSeconds: number): Promise<{ pid: number; stop: () => void }> {
  const sh = spawn("sh", ["-c", `sleep ${childSeconds} & echo $!; exec sleep 30`], { stdio: ["ignore", "pipe", "ignore"] });
  const pid = await new Promise<number>((resolve) => sh.stdout.once("data", (b: Buffer) => resolve(Number(String(b).trim()))));
  return { pid, stop: () => sh.kill("SIGKILL") };
}

describe("the lab's wait for a killed qemu", () => {
  it("waits while the process runs and ends when it is a zombie", async () => {
    const child = await unreapedChild(1);
    try {
      const started = procStat(child.pid)?.started;
      expect(started).toBeDefined();
      expect(procStat(child.pid)?.state).not.toBe("Z");
      await untilExited(child.pid, started, 10_000, "test");
      // Still in the process table, as a zombie: its files are closed, which is what the wait is for.
      expect(procStat(child.pid)).toEqual({ state: "Z", started });
    } finally {
      child.stop();
    }
  });

  it("gives up at its deadline naming the process", async () => {
    const child = await unreapedChild(30);
    try {
      await expect(untilExited(child.pid, procStat(child.pid)?.started, 300, "t-hung")).rejects.toThrow(
        `lab director t-hung: qemu (pid ${child.pid}) still running 0.3 s after SIGKILL`,
      );
    } finally {
      child.stop();
      process.kill(child.pid, "SIGKILL");
    }
  });

  it("a pid now used by another process (another start time) counts as gone", async () => {
    const child = await unreapedChild(30);
    try {
      await untilExited(child.pid, "1", 300, "test");
    } finally {
      child.stop();
      process.kill(child.pid, "SIGKILL");
    }
  });
});
