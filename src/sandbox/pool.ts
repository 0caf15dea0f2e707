/** `Sandbox.pool()`: a warm pool of VM sandboxes of one plan (policy in warm-pool.ts). */
import { planSandbox, type SandboxOptions } from "../config/index.js";
import type { VmSandbox } from "./vm-sandbox.js";
import { WarmPool } from "./warm-pool.js";

export interface PoolOptions extends SandboxOptions {
  /** How many sandboxes to keep started and ready (1 to 32). */
  size: number;
}

/**
 * `Sandbox.pool()`: sandboxes of one configuration kept started, so `acquire()` returns one at
 * once. Each is an ordinary sandbox with its own id, hostname, entropy and disk; its
 * `timeoutSeconds` starts counting when it is acquired. Close what you acquire as usual;
 * `close()` stops the ones still waiting in the pool.
 */
export class SandboxPool implements AsyncDisposable {
  private readonly pool: WarmPool<VmSandbox>;

  constructor(options: PoolOptions, start: (options: SandboxOptions) => Promise<VmSandbox>) {
    const { size, ...sandboxOptions } = options;
    // Refuse a bad configuration now, not on every background start.
    planSandbox(sandboxOptions);
    this.pool = new WarmPool(() => start(sandboxOptions), size);
  }

  get size(): number {
    return this.pool.size;
  }

  /** Sandboxes started and waiting. */
  get available(): number {
    return this.pool.available;
  }

  /**
   * A ready sandbox (at once when one is waiting; otherwise when the next start finishes); a
   * replacement starts in the background. Rejects with a background start's error.
   */
  async acquire(): Promise<VmSandbox> {
    const sandbox = await this.pool.acquire();
    sandbox.startTimeout();
    return sandbox;
  }

  /** Resolves once `size` sandboxes are waiting (rejects if a start failed). */
  whenFull(): Promise<void> {
    return this.pool.whenFull();
  }

  /** Stops the sandboxes not acquired; acquired ones are the caller's to close. */
  close(): Promise<void> {
    return this.pool.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
