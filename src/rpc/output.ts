/**
 * The server's side of stdout: every message is one ASCII-only line, written whole (lines never
 * interleave). Writes are asynchronous; when the client stops reading and more than
 * `highWaterBytes` pile up, `backedUp` turns true so producers (streamed output, events, the
 * line reader) can wait in `writable()` instead of growing host memory. A write error (the
 * client went away) ends the output for good and is reported once through `onBroken`.
 */
import type { Writable } from "node:stream";
import { encodeLine } from "./wire.js";

export class RpcOutput {
  /** Bound at construction: the CLI then points `process.stdout.write` at stderr for stray output. */
  private readonly write: Writable["write"];
  private broken = false;
  private waiters: Array<() => void> = [];
  private brokenListeners: Array<() => void> = [];

  constructor(
    private readonly sink: Writable,
    private readonly highWaterBytes: number,
  ) {
    this.write = sink.write.bind(sink);
    sink.on("error", () => this.markBroken());
    sink.on("close", () => this.markBroken());
    sink.on("drain", () => this.wake());
  }

  /** Queues one message; false once the output is gone. */
  send(message: object): boolean {
    if (this.broken) return false;
    this.write(encodeLine(message));
    return true;
  }

  get isBroken(): boolean {
    return this.broken;
  }

  /** True while more than the high-water mark waits to be written. */
  get backedUp(): boolean {
    return !this.broken && this.sink.writableLength > this.highWaterBytes;
  }

  /** Resolves once the queue is below the high-water mark again (or the output is gone). */
  writable(): Promise<void> {
    if (!this.backedUp) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Calls `fn` once when the output breaks. */
  onBroken(fn: () => void): void {
    if (this.broken) queueMicrotask(fn);
    else this.brokenListeners.push(fn);
  }

  /** Resolves once everything queued is written, or after `timeoutMs`. */
  async flush(timeoutMs: number): Promise<void> {
    if (this.broken || this.sink.writableLength === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      timer.unref();
      this.write("", () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private wake(): void {
    if (this.backedUp) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const fn of waiters) fn();
  }

  private markBroken(): void {
    if (this.broken) return;
    this.broken = true;
    this.wake();
    const listeners = this.brokenListeners;
    this.brokenListeners = [];
    for (const fn of listeners) fn();
  }
}
