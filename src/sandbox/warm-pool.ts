/**
 * The warm pool's policy, independent of sandboxes: keep N started, hand out, replace, report
 * start errors.
 */
import { ErrInvalidConfig, ErrVMNotRunning } from "../errors.js";

/** What the pool keeps: something started that can be checked and closed. */
export interface PoolMember {
  readonly running: boolean;
  close(): Promise<void>;
}

/** The most members one pool may keep started (each is a VM with its own memory). */
export const MAX_POOL_SIZE = 32;

/**
 * Keeps `size` members started and ready, so `acquire()` hands one over at once and starts a
 * replacement behind it. Starts run one at a time (on a small machine, parallel VM boots only
 * slow each other down, and the first start may be the one that saves a snapshot the others
 * restore from). A failed start is kept and rejects the next `acquire()`; the pool does not
 * retry until someone acquires again, so a broken configuration never spins.
 */
export class WarmPool<T extends PoolMember> {
  private readonly ready: T[] = [];
  private readonly waiters: { resolve(m: T): void; reject(e: unknown): void }[] = [];
  private starting: Promise<void> | undefined;
  private failure: unknown;
  private closed = false;

  constructor(
    private readonly start: () => Promise<T>,
    readonly size: number,
  ) {
    if (!Number.isInteger(size) || size < 1 || size > MAX_POOL_SIZE) {
      throw new ErrInvalidConfig(`pool size must be an integer from 1 to ${MAX_POOL_SIZE}`);
    }
    this.fill();
  }

  /** Members started and waiting to be acquired. */
  get available(): number {
    return this.ready.length;
  }

  /**
   * A started member, at once when one is ready, otherwise as soon as the next start ends.
   * The caller owns it from now on (the pool never closes an acquired member). Rejects with
   * the error of a failed start, or when the pool is closed.
   */
  acquire(): Promise<T> {
    if (this.closed) return Promise.reject(new ErrVMNotRunning("the sandbox pool is closed"));
    this.dropDead();
    const member = this.ready.shift();
    if (member) {
      // The replacement starts after the caller has its member, not inside this call.
      setImmediate(() => this.fill());
      return Promise.resolve(member);
    }
    if (this.failure !== undefined) {
      const err = this.failure;
      this.failure = undefined;
      this.fill(); // the next acquire tries again
      return Promise.reject(err);
    }
    const waiting = new Promise<T>((resolve, reject) => this.waiters.push({ resolve, reject }));
    this.fill();
    return waiting;
  }

  /** Resolves when `size` members are ready (or a start failed: then rejects with its error). */
  async whenFull(): Promise<void> {
    while (!this.closed && this.ready.length < this.size) {
      if (this.failure !== undefined) throw this.failure;
      if (!this.starting) this.fill();
      await this.starting;
    }
  }

  /** Closes every member not acquired, including one still starting; acquired ones stay. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiters.splice(0)) {
      w.reject(new ErrVMNotRunning("the sandbox pool is closed"));
    }
    await this.starting;
    await Promise.all(this.ready.splice(0).map((m) => m.close().catch(() => undefined)));
  }

  /** Members that died while idle (their VM crashed or timed out) are closed and dropped. */
  private dropDead(): void {
    for (let i = this.ready.length - 1; i >= 0; i--) {
      const m = this.ready[i]!;
      if (!m.running) {
        this.ready.splice(i, 1);
        void m.close().catch(() => undefined);
      }
    }
  }

  private needed(): boolean {
    return !this.closed && this.failure === undefined && this.ready.length < this.size;
  }

  /** Starts members one after another until the pool is full, unless already doing so. */
  private fill(): void {
    if (this.starting || !this.needed()) return;
    this.starting = (async () => {
      while (this.needed()) {
        let member: T;
        try {
          member = await this.start();
        } catch (err) {
          this.failure = err;
          const waiter = this.waiters.shift();
          if (waiter) {
            this.failure = undefined;
            waiter.reject(err);
          }
          break;
        }
        if (this.closed) {
          await member.close().catch(() => undefined);
          break;
        }
        const waiter = this.waiters.shift();
        if (waiter) waiter.resolve(member);
        else this.ready.push(member);
      }
    })().finally(() => {
      this.starting = undefined;
      // A waiter that arrived after a failure still needs a start.
      if (this.waiters.length > 0 && !this.closed && this.failure === undefined) this.fill();
    });
  }
}
