// Line framing of a helper channel's stdout; the tail of stderr is kept to explain a crash.
import type { SshChannel } from "../session";

/** Splits a channel's stdout into lines; a closed channel rejects every pending and later read. */
export class LineReader {
  private buffer = "";
  private lines: string[] = [];
  private waiters: Array<{ resolve: (l: string) => void; reject: (e: Error) => void }> = [];
  private ended?: Error;
  private stderr = "";

  constructor(channel: SshChannel, onClose: (code: number | null, signal: string | undefined, stderr: string) => Error) {
    channel.setEncoding("utf8");
    channel.on("data", (chunk: string) => {
      this.buffer += chunk;
      let nl: number;
      while ((nl = this.buffer.indexOf("\n")) >= 0) {
        this.push(this.buffer.slice(0, nl));
        this.buffer = this.buffer.slice(nl + 1);
      }
    });
    // Keep only the tail: enough to explain a crash.
    channel.stderr.on("data", (chunk: Buffer) => (this.stderr = (this.stderr + chunk.toString("utf8")).slice(-4000)));
    let exit: { code: number | null; signal?: string } = { code: null };
    channel.on("exit", (code, signal) => (exit = { code, signal }));
    channel.on("close", () => {
      this.ended = onClose(exit.code, exit.signal, this.stderr);
      this.waiters.splice(0).forEach((w) => w.reject(this.ended!));
    });
  }

  get closed(): boolean {
    return this.ended !== undefined;
  }

  private push(line: string): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter.resolve(line);
    else this.lines.push(line);
  }

  next(): Promise<string> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (this.ended) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }
}
