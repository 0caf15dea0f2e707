/**
 * When a host directory's metadata calls may run synchronously on the event loop.
 *
 * A trip through libuv's thread pool costs ~0.1 ms on a busy 2-core host (submit, a worker
 * wakes, the result is posted back and the loop wakes), and the guest waits for each FUSE
 * request in turn: an untar's create, times, owner and mode requests made ~8 such trips per
 * file, about as long as the guest↔host hop itself. The same calls on a local disk take a few
 * microseconds in the dentry and inode caches. So they run synchronously while they are fast,
 * and the gate closes when they are not: when `slowCalls` of the last 32 synchronous calls
 * took longer than `slowMs` each, or one took longer than `stallMs`, every call of this
 * provider goes through the thread pool for `backoffMs`. A slow host directory then blocks
 * the event loop (every sandbox of the process) for a few calls, not for each of them; the
 * path walk (host-dir-walk.ts) and the watcher's probe were synchronous before this already.
 * A count, not every call: on a loaded host a call of microseconds is now and then preempted
 * for a scheduler slice (measured: 18–34 ms at load 5 on 2 cores), which says nothing about
 * the directory; a slow directory makes most calls slow.
 */
import { performance } from "node:perf_hooks";

export interface SyncGateOptions {
  /** A synchronous call longer than this is slow (default 1 ms). */
  readonly slowMs?: number;
  /** This many slow calls among the last 32 close the gate (default 8). */
  readonly slowCalls?: number;
  /** One synchronous call longer than this closes the gate (default 100 ms). */
  readonly stallMs?: number;
  /** How long the gate stays closed after a slow call (default 10 s). */
  readonly backoffMs?: number;
  /** The clock (ms); tests pass their own. */
  readonly now?: () => number;
}

export class SyncGate {
  private closedUntil = Number.NEGATIVE_INFINITY;
  /** One bit per synchronous call, the latest in bit 0: set when it was slow. */
  private recent = 0;
  private readonly slowMs: number;
  private readonly slowCalls: number;
  private readonly stallMs: number;
  private readonly backoffMs: number;
  private readonly now: () => number;

  constructor(options: SyncGateOptions = {}) {
    this.slowMs = options.slowMs ?? 1;
    this.slowCalls = options.slowCalls ?? 8;
    this.stallMs = options.stallMs ?? 100;
    this.backoffMs = options.backoffMs ?? 10_000;
    this.now = options.now ?? (() => performance.now());
  }

  /** Whether calls run synchronously now. */
  get open(): boolean {
    return this.now() >= this.closedUntil;
  }

  /**
   * `fast()` on the event loop while the gate is open, else `slow()` (the thread pool). An
   * error thrown by `fast` rejects the returned promise like one from `slow` would.
   */
  async call<T>(fast: () => T, slow: () => Promise<T>): Promise<T> {
    if (!this.open) return slow();
    const started = this.now();
    try {
      return fast();
    } finally {
      const ended = this.now();
      const took = ended - started;
      this.recent = ((this.recent << 1) | (took > this.slowMs ? 1 : 0)) >>> 0;
      if (took > this.stallMs || bitCount(this.recent) >= this.slowCalls) {
        this.closedUntil = ended + this.backoffMs;
        this.recent = 0;
      }
    }
  }
}

function bitCount(bits: number): number {
  let n = 0;
  for (let b = bits; b !== 0; b &= b - 1) n++;
  return n;
}
