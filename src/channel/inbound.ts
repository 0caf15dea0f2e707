/**
 * Readable for guest -> host data whose CREDIT follows what the reader actually consumed.
 *
 * Node gives no "bytes consumed" event, and `_read` is not called again until we push, so it
 * cannot be the signal alone. Instead consumption is measured as bytes pushed minus bytes
 * still buffered, checked after each push (covers flowing mode, where data is emitted straight
 * through) and after each `read()` (every consumer path — flowing, async iteration, pipe,
 * explicit read — goes through `read()`).
 */
import { Readable } from "node:stream";
import { GUEST_WINDOW } from "./contract.js";

export interface InboundHooks {
  /** `bytes` more have left the buffer (or were discarded): time to (maybe) return credit. */
  onConsumed(bytes: number): void;
  /** The reader destroyed the stream before it ended. */
  onAbandon?(): void;
}

export class CreditedReadable extends Readable {
  private pushedBytes = 0;
  private reportedBytes = 0;
  /** The guest side is over (finish/fail): no more data, no abandon notice. */
  private settled = false;

  constructor(private readonly hooks: InboundHooks) {
    // The window already bounds what can be buffered; a smaller mark would only add _read calls.
    super({ highWaterMark: GUEST_WINDOW });
  }

  /** Hands guest data to the reader. After destroy the bytes are dropped but still credited. */
  deliver(chunk: Buffer): void {
    if (chunk.length === 0 || this.settled) return;
    if (this.destroyed) {
      this.hooks.onConsumed(chunk.length);
      return;
    }
    this.pushedBytes += chunk.length;
    this.push(chunk);
    this.report();
  }

  /** Normal end of data (EXIT, OK, or the host abandoning the stream). */
  finish(): void {
    if (this.settled) return;
    this.settled = true;
    if (!this.destroyed) this.push(null);
  }

  /** Ends the stream with an error, unless all of its data had already arrived. */
  fail(err: Error): void {
    if (this.settled) return;
    this.settled = true;
    if (!this.destroyed) this.destroy(err);
  }

  override read(size?: number): unknown {
    const chunk: unknown = super.read(size);
    this.report();
    return chunk;
  }

  override _read(): void {
    this.report();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.settled) {
      // Whatever was still buffered is thrown away: hand its window back so a live stream
      // (exec stdout the user no longer wants) keeps running instead of stalling.
      const unreported = this.pushedBytes - this.reportedBytes;
      this.reportedBytes = this.pushedBytes;
      if (unreported > 0) this.hooks.onConsumed(unreported);
      this.hooks.onAbandon?.();
    }
    callback(err);
  }

  private report(): void {
    if (this.destroyed) return;
    const consumed = this.pushedBytes - this.readableLength - this.reportedBytes;
    if (consumed > 0) {
      this.reportedBytes += consumed;
      this.hooks.onConsumed(consumed);
    }
  }
}
