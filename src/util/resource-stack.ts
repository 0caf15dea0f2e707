/**
 * The one list a long-lived owner (a sandbox, a supervisor) releases its resources through.
 * Each resource is pushed as it is acquired, with its release; `release()` runs them in reverse
 * order, whether the owner is being closed normally or its start failed half-way, so the error
 * path and the normal path can never drift apart. A resource may also give a synchronous
 * `onExit` variant: if the host process exits with the owner still open, only synchronous code
 * can run (the `exit` event), and `releaseAtExit()` runs those.
 *
 * A release that fails does not stop the others: its error is kept and handed to `onError`
 * (the owner decides whether it is worth a warning), so one stuck resource never leaks the
 * rest — and never turns a command that succeeded into a failure.
 */

export interface Releasable {
  /** What it is, for error messages (`run dir`, `qemu`, ...). */
  name: string;
  release: () => void | Promise<void>;
  /** Synchronous best effort at process exit; default: nothing (e.g. QEMU dies by itself). */
  onExit?: () => void;
}

export class ReleaseError extends Error {
  constructor(
    readonly resource: string,
    cause: unknown,
  ) {
    super(`releasing ${resource}: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
  }
}

type ExitHook = () => void;
const exitHooks = new Set<ExitHook>();
let exitListenerInstalled = false;

/** Runs `hook` if the process exits while it is registered; returns the unregister function. */
function onProcessExit(hook: ExitHook): () => void {
  if (!exitListenerInstalled) {
    exitListenerInstalled = true;
    process.on("exit", () => {
      for (const fn of exitHooks) {
        try {
          fn();
        } catch {
          // best effort: the process is exiting
        }
      }
    });
  }
  exitHooks.add(hook);
  return () => exitHooks.delete(hook);
}

export class ResourceStack {
  private readonly items: Releasable[] = [];
  private releasing: Promise<ReleaseError[]> | undefined;
  private readonly unregisterExit: () => void;

  constructor(private readonly onError: (err: ReleaseError) => void = () => undefined) {
    this.unregisterExit = onProcessExit(() => this.releaseAtExit());
  }

  /** Adds a resource; it is released before everything pushed earlier. */
  push(item: Releasable): void {
    if (this.releasing) {
      // Acquired after the owner started closing (a start that raced a close): let it go now.
      void this.releaseOne(item).then((err) => err && this.onError(err));
      return;
    }
    this.items.push(item);
  }

  /** Shorthand for a resource with only an async or sync release. */
  defer(name: string, release: () => void | Promise<void>, onExit?: () => void): void {
    this.push({ name, release, ...(onExit ? { onExit } : {}) });
  }

  /**
   * Hands everything over to `owner` (in acquisition order), for a step that acquires on its
   * own behalf and passes the result on only when it succeeded (a boot attempt).
   */
  transferTo(owner: ResourceStack): void {
    for (const item of this.items.splice(0)) owner.push(item);
    this.unregisterExit();
  }

  get released(): boolean {
    return this.releasing !== undefined;
  }

  /**
   * Releases everything in reverse order; resolves with the failures (each also given to
   * `onError`). Calling it again returns the same result.
   */
  release(): Promise<ReleaseError[]> {
    this.releasing ??= (async () => {
      const failures: ReleaseError[] = [];
      while (this.items.length > 0) {
        const item = this.items.pop() as Releasable;
        const err = await this.releaseOne(item);
        if (err) {
          failures.push(err);
          this.onError(err);
        }
      }
      this.unregisterExit();
      return failures;
    })();
    return this.releasing;
  }

  /** The synchronous variants, newest first; for the process `exit` event only. */
  releaseAtExit(): void {
    for (const item of [...this.items].reverse()) {
      try {
        item.onExit?.();
      } catch {
        // best effort: the process is exiting
      }
    }
  }

  private async releaseOne(item: Releasable): Promise<ReleaseError | undefined> {
    try {
      await item.release();
      return undefined;
    } catch (err) {
      return new ReleaseError(item.name, err);
    }
  }
}
