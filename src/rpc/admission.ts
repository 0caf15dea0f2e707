/**
 * How many requests a session runs at once, and how many wait for a turn. A client that sends
 * 10,000 requests in one burst gets them all run, `maxRunning` at a time; one that goes past
 * the queue's bounds (count, and bytes of request lines, which hold the params) gets errors
 * for the excess. Either way host memory stays bounded, and the session keeps reading the
 * client, so `cancel`, stdin and EOF still get through.
 */

interface Waiter {
  readonly signal: AbortSignal;
  readonly bytes: number;
  grant(taken: boolean): void;
}

export class Admission {
  private running = 0;
  private queuedBytes = 0;
  /** In arrival order (a Set keeps it, and drops a cancelled waiter in O(1)). */
  private readonly waiting = new Set<Waiter>();

  constructor(
    private readonly maxRunning: number,
    private readonly maxQueued: number,
    private readonly maxQueuedBytes: number,
  ) {}

  /** False when a request of `bytes` would overflow the queue: refuse it. */
  hasRoom(bytes: number): boolean {
    if (this.running < this.maxRunning) return true;
    return this.waiting.size < this.maxQueued && this.queuedBytes + bytes <= this.maxQueuedBytes;
  }

  describeLimits(): string {
    return `${this.maxRunning} running, ${this.maxQueued} queued`;
  }

  /**
   * Resolves true once the request may run (call `release()` when it ends), or false if it
   * was cancelled while it waited (nothing to release).
   */
  acquire(signal: AbortSignal, bytes: number): Promise<boolean> {
    if (this.running < this.maxRunning && this.waiting.size === 0) {
      this.running++;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const onAbort = (): void => {
        if (this.waiting.delete(waiter)) this.queuedBytes -= bytes;
        resolve(false);
      };
      const waiter: Waiter = {
        signal,
        bytes,
        grant: (taken) => {
          signal.removeEventListener("abort", onAbort);
          resolve(taken);
        },
      };
      this.waiting.add(waiter);
      this.queuedBytes += bytes;
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  release(): void {
    this.running--;
    while (this.running < this.maxRunning && this.waiting.size > 0) {
      const next = this.waiting.values().next().value as Waiter;
      this.waiting.delete(next);
      this.queuedBytes -= next.bytes;
      this.running++;
      next.grant(true);
    }
  }
}
