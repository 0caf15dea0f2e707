/**
 * Writes frames to the io and watches it for data and for its end. Frames are held back
 * until the guest's HELLO: before that the agent may not have opened its port yet, and
 * bytes sent into an unopened virtio-serial port can be lost.
 */
import type { Duplex } from "node:stream";
import { ErrVMNotRunning } from "../errors.js";
import { Deferred } from "./deferred.js";
import { encodeFrameHeader } from "./frame.js";

export interface TransportEvents {
  onData(chunk: Buffer): void;
  /** The io ended, closed or failed; called at most once. */
  onGone(err: Error): void;
}

/** Below this a payload is copied next to its header (one write); above, header and payload go out corked. */
const COALESCE_BYTES = 16 * 1024;
const noop = (): void => undefined;

export class Transport {
  private held: Buffer[] | undefined = [];
  private drainWaiters: Deferred<void>[] = [];
  private closeError: Error | undefined;
  private readonly listeners: [string, (...args: unknown[]) => void][];

  constructor(
    private readonly io: Duplex,
    events: TransportEvents,
  ) {
    const gone = (err: Error): void => {
      if (this.closeError === undefined) events.onGone(err);
    };
    this.listeners = [
      [
        "data",
        (chunk) => {
          if (Buffer.isBuffer(chunk)) events.onData(chunk);
          else gone(new ErrVMNotRunning("guest channel io delivered text, not bytes"));
        },
      ],
      ["end", () => gone(new ErrVMNotRunning("guest channel ended (VM stopped?)"))],
      ["close", () => gone(new ErrVMNotRunning("guest channel closed (VM stopped?)"))],
      [
        "error",
        (err) =>
          gone(
            new ErrVMNotRunning(`guest channel failed: ${String((err as Error)?.message ?? err)}`, {
              cause: err,
            }),
          ),
      ],
      ["drain", () => this.wakeWriters()],
    ];
    for (const [event, fn] of this.listeners) io.on(event, fn);
    if (io.destroyed || io.readableEnded) {
      queueMicrotask(() => gone(new ErrVMNotRunning("guest channel io already closed")));
    }
  }

  send(type: number, streamId: number, payload?: Uint8Array): void {
    if (this.closeError !== undefined) return;
    const header = encodeFrameHeader(type, streamId, payload?.length ?? 0);
    const body = payload === undefined || payload.length === 0 ? undefined : toBuffer(payload);
    if (this.held !== undefined) {
      this.held.push(body === undefined ? header : Buffer.concat([header, body]));
      return;
    }
    if (!this.io.writable) return;
    if (body === undefined) {
      this.io.write(header);
    } else if (body.length <= COALESCE_BYTES) {
      this.io.write(Buffer.concat([header, body]));
    } else {
      this.io.cork();
      this.io.write(header);
      this.io.write(body);
      this.io.uncork();
    }
  }

  /** HELLO arrived: send what was waiting, in order. */
  flushHeld(): void {
    const held = this.held;
    this.held = undefined;
    if (held === undefined || held.length === 0 || !this.io.writable) return;
    this.io.cork();
    for (const frame of held) this.io.write(frame);
    this.io.uncork();
  }

  /** Resolves when the io can take more (its own buffer, separate from stream credit). */
  whenWritable(): Promise<void> {
    if (this.closeError !== undefined) return Promise.reject(this.closeError);
    if (this.held !== undefined || !this.io.writableNeedDrain) return Promise.resolve();
    const waiter = new Deferred<void>();
    this.drainWaiters.push(waiter);
    return waiter.promise;
  }

  close(err: Error): void {
    if (this.closeError !== undefined) return;
    this.closeError = err;
    this.held = undefined;
    for (const [event, fn] of this.listeners) this.io.off(event, fn);
    // A late error from a half-dead socket must not become an uncaught 'error' event.
    this.io.on("error", noop);
    for (const waiter of this.drainWaiters) waiter.reject(err);
    this.drainWaiters = [];
    this.io.destroy();
  }

  private wakeWriters(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const waiter of waiters) waiter.resolve();
  }
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes)
    ? bytes
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
