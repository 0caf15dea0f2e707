/**
 * Per-stream credit windows (docs/PROTOCOL.md "Flow control"). One object per direction:
 * SendWindow gates what the host may send, RecvWindow polices what the guest sends and
 * decides when to hand window back.
 */
import { ErrProtocol } from "../errors.js";
import { GUEST_WINDOW, INITIAL_WINDOW } from "./contract.js";

/** A window can never usefully exceed what a u32 CREDIT could describe; more means a broken guest. */
const MAX_WINDOW = 0xffffffff;
/**
 * CREDIT is batched to a quarter window so a stream of small reads does not turn into a
 * stream of CREDIT frames. No deadlock: the guest stalls only when the whole window is
 * outstanding, and then either the reader holds >= 3/4 of it (its own backpressure) or at
 * least a quarter is consumed and gets returned.
 */
const CREDIT_BATCH_BYTES = GUEST_WINDOW / 4;

/** Host -> guest: how much STDIN we may still send on one stream. */
export class SendWindow {
  private availableBytes = INITIAL_WINDOW;
  private waiter: { resolve: () => void; reject: (err: Error) => void } | undefined;
  private failure: Error | undefined;

  get available(): number {
    return this.availableBytes;
  }

  /** Guest CREDIT. Throws ErrProtocol if it would push the window past u32. */
  grant(bytes: number): void {
    if (this.availableBytes + bytes > MAX_WINDOW) {
      throw new ErrProtocol(`CREDIT grows the window past ${MAX_WINDOW} bytes`);
    }
    this.availableBytes += bytes;
    if (this.availableBytes > 0 && this.waiter !== undefined) {
      const { resolve } = this.waiter;
      this.waiter = undefined;
      resolve();
    }
  }

  /** Claims up to `wanted` bytes of window (possibly 0). */
  take(wanted: number): number {
    const n = Math.min(wanted, this.availableBytes);
    this.availableBytes -= n;
    return n;
  }

  /** Resolves once there is window; rejects once fail() was called. One waiter at a time. */
  whenOpen(): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.availableBytes > 0) return Promise.resolve();
    if (this.waiter !== undefined)
      return Promise.reject(new Error("SendWindow: concurrent senders"));
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** The stream is gone: wake the sender with `err` so it stops. */
  fail(err: Error): void {
    this.failure ??= err;
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.reject(this.failure);
  }
}

/** Guest -> host: bytes the guest has sent on one stream (STDOUT and STDERR share it). */
export class RecvWindow {
  private outstandingBytes = 0;
  private consumedUncreditedBytes = 0;

  get outstanding(): number {
    return this.outstandingBytes;
  }

  /** Called for every incoming data frame; throws ErrProtocol if the guest overran its window. */
  receive(bytes: number): void {
    if (this.outstandingBytes + bytes > GUEST_WINDOW) {
      throw new ErrProtocol(
        `guest sent ${bytes} bytes with only ${GUEST_WINDOW - this.outstandingBytes} bytes of credit`,
      );
    }
    this.outstandingBytes += bytes;
  }

  /** The reader consumed `bytes`; returns how much CREDIT to send now (0 = wait for more). */
  consumed(bytes: number): number {
    this.consumedUncreditedBytes += bytes;
    if (this.consumedUncreditedBytes < CREDIT_BATCH_BYTES) return 0;
    const credit = this.consumedUncreditedBytes;
    this.consumedUncreditedBytes = 0;
    this.outstandingBytes -= credit;
    return credit;
  }
}
