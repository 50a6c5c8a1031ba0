// Line framing of a helper channel's stdout; the tail of stderr is kept to explain a crash.
import type { SshChannel } from "../session";

/**
 * How much unread text a LineReader holds (an unfinished line plus lines nobody has read yet) before it gives up: a
 * director that never ends a line, or floods lines nobody asked for, would otherwise grow the provider's memory until
 * a deadline, or until V8's string limit throws inside the data handler and takes the provider process down.
 * `overflow` gets the start of the oldest unread text and returns the error every pending and later read rejects with.
 */
export interface LineLimit {
  chars: number;
  overflow: (sample: string) => Error;
}

/**
 * Splits a channel's stdout into lines; a closed channel rejects every pending and later read, as does going over the
 * limit (which also closes the channel).
 */
export class LineReader {
  private partial = "";
  private lines: string[] = [];
  /** Characters in `lines`. */
  private queued = 0;
  private waiters: Array<{ resolve: (l: string) => void; reject: (e: Error) => void }> = [];
  private ended?: Error;
  private stderr = "";
  private bound?: LineLimit;

  constructor(
    private readonly channel: SshChannel,
    onClose: (code: number | null, signal: string | undefined, stderr: string) => Error,
  ) {
    channel.setEncoding("utf8");
    channel.on("data", (chunk: string) => {
      // Only the new chunk is searched for newlines: a long answer arrives in many chunks.
      let from = 0;
      for (let nl = chunk.indexOf("\n"); nl >= 0 && !this.ended; nl = chunk.indexOf("\n", from)) {
        const line = this.partial + chunk.slice(from, nl);
        this.partial = "";
        from = nl + 1;
        this.push(line);
      }
      if (this.ended) return;
      this.partial += chunk.slice(from);
      this.enforce();
    });
    // Keep only the tail: enough to explain a crash.
    channel.stderr.on("data", (chunk: Buffer) => (this.stderr = (this.stderr + chunk.toString("utf8")).slice(-4000)));
    let exit: { code: number | null; signal?: string } = { code: null };
    channel.on("exit", (code, signal) => (exit = { code, signal }));
    // Lines read before the close stay readable (an answer the helper wrote just before it exited).
    channel.on("close", () => this.end(onClose(exit.code, exit.signal, this.stderr), false));
  }

  get closed(): boolean {
    return this.ended !== undefined;
  }

  /** Bounds what may be held unread from now on (checked at once against what already is). */
  limit(bound: LineLimit): void {
    this.bound = bound;
    this.enforce();
  }

  private push(line: string): void {
    const waiter = this.waiters.shift();
    if (waiter) return waiter.resolve(line);
    this.lines.push(line);
    this.queued += line.length;
    this.enforce();
  }

  private enforce(): void {
    if (!this.bound || this.ended || this.partial.length + this.queued <= this.bound.chars) return;
    const sample = (this.lines[0] ?? this.partial).slice(0, 200);
    this.end(this.bound.overflow(sample), true);
    this.channel.close();
  }

  /** The first reason wins: an overflow closes the channel, whose close event must not replace it. */
  private end(reason: Error, drop: boolean): void {
    if (this.ended) return;
    this.ended = reason;
    this.partial = "";
    if (drop) {
      this.lines = [];
      this.queued = 0;
    }
    this.waiters.splice(0).forEach((w) => w.reject(reason));
  }

  next(): Promise<string> {
    const line = this.lines.shift();
    if (line !== undefined) {
      this.queued -= line.length;
      return Promise.resolve(line);
    }
    if (this.ended) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }
}
