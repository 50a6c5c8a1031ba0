// A stand-in for an SSH exec channel (provider/session SshChannel): what the director "prints" is pushed by the test
// with pour(), what the provider writes is kept, and close() is the channel going away (helper killed, connection
// dropped, or the provider closing it). For unit tests of the code that reads channels; real ones are in test/lab.
import { Duplex, PassThrough } from "node:stream";

export class FakeChannel extends Duplex {
  readonly stderr = new PassThrough();
  /** What the provider wrote (stdin of the director's command). */
  written = "";
  gone = false;

  override _read(): void {}
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    this.written += chunk.toString();
    this.received();
    cb();
  }
  /** Called after every write: subclasses answer here. */
  protected received(): void {}

  /** Text on the channel's stdout, exactly as given (no newline added). */
  pour(text: string): void {
    this.push(text);
  }
  say(line: string): void {
    this.pour(line + "\n");
  }
  close(): void {
    if (this.gone) return;
    this.gone = true;
    this.emit("exit", null);
    this.emit("close");
  }
}
