import { Duplex } from "node:stream";
import type { UpstreamTcpEvents } from "../upstream.js";

/**
 * A guest TCP flow as a Node stream, so Node's TLS and HTTP servers can run on it. Backpressure
 * both ways: guest bytes are acknowledged to the stack (`onFlushed`) only once the reader
 * wants more, and a write toward the guest completes only while the stack has not paused us.
 * It also offers the socket methods Node's HTTP server calls (`setTimeout` and friends).
 */
export class GuestStream extends Duplex {
  private toGuestPaused = false;
  private heldWrite: (() => void) | undefined;
  private unflushed: Array<() => void> = [];
  private idleMs = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private lastActiveMs = 0;
  private endedToGuest = false;

  constructor(private readonly events: UpstreamTcpEvents) {
    super({ allowHalfOpen: true, highWaterMark: 256 * 1024 });
  }

  // ---- from the stack (guest -> host) ----

  fromGuest(chunk: Buffer, onFlushed: () => void): void {
    if (this.destroyed) return onFlushed();
    this.touch();
    if (this.push(chunk)) onFlushed();
    else this.unflushed.push(onFlushed);
  }

  guestEnded(): void {
    if (!this.destroyed) this.push(null);
  }

  pauseToGuest(): void {
    this.toGuestPaused = true;
  }

  resumeToGuest(): void {
    this.toGuestPaused = false;
    const cb = this.heldWrite;
    this.heldWrite = undefined;
    cb?.();
  }

  // ---- Duplex ----

  override _read(): void {
    const waiting = this.unflushed;
    this.unflushed = [];
    for (const cb of waiting) cb();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.touch();
    this.events.onData(chunk);
    // onData may have paused us synchronously (the stack's send buffer is full).
    if (this.toGuestPaused) this.heldWrite = callback;
    else callback();
  }

  override _final(callback: () => void): void {
    this.endedToGuest = true;
    this.events.onEnd();
    callback();
  }

  override _destroy(err: Error | null, callback: (err: Error | null) => void): void {
    this.clearIdle();
    this._read();
    const held = this.heldWrite;
    this.heldWrite = undefined;
    held?.();
    // Torn down before a clean end: the guest sees a reset.
    if (!this.endedToGuest) this.events.onError(err ?? new Error("connection closed"));
    callback(err);
  }

  // ---- what net.Socket users (Node's HTTP server) call ----

  setTimeout(ms: number, onTimeout?: () => void): this {
    this.idleMs = ms;
    if (onTimeout) this.once("timeout", onTimeout);
    this.clearIdle(); // a new period starts now, whatever the old one was
    this.touch();
    return this;
  }

  setNoDelay(): this {
    return this;
  }

  setKeepAlive(): this {
    return this;
  }

  /**
   * Called for every chunk both ways (one per TLS record on a download), so it only stamps
   * the time: one timer per stream checks the stamp when it fires and re-arms for the rest,
   * instead of a timer made and cancelled per chunk (measurable garbage at 100+ MB/s).
   */
  private touch(): void {
    this.lastActiveMs = performance.now();
    if (this.idleTimer === undefined && this.idleMs > 0 && !this.destroyed)
      this.armIdle(this.idleMs);
  }

  private armIdle(delayMs: number): void {
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      if (this.destroyed || this.idleMs === 0) return;
      const quietMs = performance.now() - this.lastActiveMs;
      if (quietMs >= this.idleMs) this.emit("timeout");
      else this.armIdle(this.idleMs - quietMs);
    }, delayMs).unref();
  }

  private clearIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }
}
